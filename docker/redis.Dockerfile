# Redis for docker-compose where no registry can be reached: Debian's redis-server (7.0) on
# the base that docker/rootfs.sh makes (it installs redis-server and redis-cli). Online,
# compose uses the official redis:7-alpine instead; docker-compose.yml's REDIS_IMAGE picks.
#   docker build -f docker/redis.Dockerfile -t imgproc-redis:local \
#     --build-arg BASE_IMAGE=imgproc-base:bookworm docker
# It runs what compose gives as the command (`redis-server --appendonly yes ...`), as the
# package's own `redis` user, in /data like the official image (the AOF volume mounts there).
ARG BASE_IMAGE=imgproc-base:bookworm
FROM ${BASE_IMAGE}

RUN mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server", "--protected-mode", "no"]
