#!/bin/sh
# Role dispatcher of the single image (see docker/Dockerfile).
#   api            apply migrations, then serve the API with gunicorn on 0.0.0.0:8000
#                  (GUNICORN_WORKERS, default 2; GUNICORN_THREADS, default 4); its log
#                  lines, access lines included, in the service's format
#                  (project/gunicorn_conf.py; LOG_FORMAT, LOG_LEVEL); its processes'
#                  HTTP metrics in PROMETHEUS_MULTIPROC_DIR (default /tmp/imgproc-metrics)
#   worker         run a worker: same as `python -m workers`
#   anything else  exec'd unchanged, e.g. `python -m workers`, `python manage.py shell`
# Each role ends in `exec`, so the server is PID 1 and receives SIGTERM itself: the
# workers' graceful shutdown depends on it.
set -eu

role="${1:-api}"
if [ "$#" -gt 0 ]; then shift; fi

case "$role" in
    api)
        python manage.py migrate --noinput
        # Each gunicorn process writes its HTTP metrics here; /metrics adds them up
        # (project/gunicorn_conf.py empties it at start).
        export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/imgproc-metrics}"
        exec gunicorn project.asgi:application \
            --config python:project.gunicorn_conf \
            --bind 0.0.0.0:8000 \
            --workers "${GUNICORN_WORKERS:-2}" \
            --threads "${GUNICORN_THREADS:-4}" \
            --timeout 120 \
            "$@"
        ;;
    worker)
        exec python -m workers "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
