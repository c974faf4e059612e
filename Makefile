# The two commands of the quick start are `make run` and `make test`;
# both create the virtualenv and install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WORKERS ?= 3
STAMP := $(VENV)/.installed

VAR_DIR ?= $(CURDIR)/var
export VAR_DIR
CTL := $(VENV)/bin/supervisorctl -c $(VAR_DIR)/supervisord.conf


.PHONY: compose-env install run test test-deps netns lint docs bench clean stop ps demo logs worker-stop \
	worker-start worker-kill worker-pause worker-resume wheelhouse rootfs containers-preflight \
	test-containers

# The last step installs the `imgproc` command-line client (.venv/bin/imgproc), editable: it
# runs this checkout's imgproc_cli/ (its dependencies are in requirements.txt).
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runcluster --port $(PORT) --workers $(WORKERS)

# docker-compose reads .env: a random Redis password and Django secret key, made once, for
# this checkout only (0600, not in git). An existing .env is left as it is.
compose-env:
	@if [ -e .env ]; then echo ".env exists: left as it is"; else \
		umask 077 && $(PYTHON) -c 'import secrets; t = secrets.token_urlsafe; \
		print(f"REDIS_PASSWORD={t(24)}\nDJANGO_SECRET_KEY={t(50)}")' > .env && \
		echo "wrote .env (REDIS_PASSWORD, DJANGO_SECRET_KEY)"; fi

# Local cluster control (while `make run` is running).
SHUTDOWN_GRACE_SECONDS ?= 25
DEMO_IMAGES ?= 480
DEVCLUSTER := $(PY) -m devcluster

stop:  ## waits until every process has exited
	@$(DEVCLUSTER) stop --var-dir $(VAR_DIR) --grace-seconds $(SHUTDOWN_GRACE_SECONDS)

ps:  ## reports stopped or dead workers; fails only when supervisord can't be asked
	@$(DEVCLUSTER) ps --var-dir $(VAR_DIR)

demo:  ## a distributed batch of about a minute, to stop and kill workers while it runs
	@$(DEVCLUSTER) demo --api-url http://127.0.0.1:$(PORT) --images $(DEMO_IMAGES)

logs:
	tail -n 50 -f $(VAR_DIR)/log/*.log

worker-stop:
	@test -n "$(ID)" || (echo "usage: make worker-stop ID=worker-2" && exit 2)
	$(CTL) stop $(ID)

worker-start:
	@test -n "$(ID)" || (echo "usage: make worker-start ID=worker-2" && exit 2)
	$(CTL) start $(ID)

worker-kill:  ## SIGKILL: supervisord restarts it under the same id
	@test -n "$(ID)" || (echo "usage: make worker-kill ID=worker-2" && exit 2)
	$(CTL) signal KILL $(ID)

worker-pause:  ## SIGSTOP: frozen, it misses its heartbeats (dead) and loses its task's lease
	@test -n "$(ID)" || (echo "usage: make worker-pause ID=worker-2" && exit 2)
	$(CTL) signal STOP $(ID)

worker-resume:  ## SIGCONT: it heartbeats again; a late result for a task it lost is fenced
	@test -n "$(ID)" || (echo "usage: make worker-resume ID=worker-2" && exit 2)
	$(CTL) signal CONT $(ID)

# iproute2 (`ip netns`) for the multi-host tests; Debian's redis-server (Redis 7: only its
# binary, tests/distributed start their own server with it) for the protocol tests; Debian's
# chromium for the console's browser tests (tests/browser, driven by Playwright: no browser
# download). Installed when missing and we are root.
test-deps:
	@command -v ip >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null) || \
		echo "iproute2 missing: the multi-host tests will be skipped"; }
	@test -x /usr/bin/redis-server || { [ "$$(id -u)" = 0 ] && \
		sh tests/support/apt-install.sh redis-server || \
		echo "/usr/bin/redis-server missing: tests/distributed fail on Redis 7"; }
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && \
		sh tests/support/apt-install.sh chromium || \
		echo "/usr/bin/chromium missing: tests/browser fail"; }
	@command -v promtool >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		sh tests/support/apt-install.sh prometheus || \
		echo "promtool missing (Debian package prometheus): tests/deploy/test_prometheus.py fails"; }

netns: install test-deps  ## the multi-host fault tests only (root + iproute2)
	$(PY) -m pytest tests/multihost -v

test: install test-deps
	$(PY) -m ruff check .
	$(PY) -m mypy distributed workers imaging devcluster common imgproc_cli
	$(PY) -m pytest

# The compose stack on a real Docker engine of its own (tests/containers, root only): builds
# the images offline, runs the fault-tolerance story, cleans up. Cached between runs in var/
# (`make clean` drops them): the wheels of requirements.txt for Debian bookworm's Python
# 3.11.2 (the offline image's), and a debootstrap'd bookworm root file system.
WHEELHOUSE := var/wheelhouse
ROOTFS_TAR := var/containers/debian-bookworm-rootfs.tar

$(WHEELHOUSE).stamp: requirements.txt | $(STAMP)
	rm -rf $(WHEELHOUSE)
	$(PY) -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
		--python-version 3.11.2 -r requirements.txt -d $(WHEELHOUSE)
	@touch $@

wheelhouse: $(WHEELHOUSE).stamp  ## the offline build's wheels (docs/containers.md)

$(ROOTFS_TAR): docker/rootfs.sh
	@mkdir -p $(@D)
	sh docker/rootfs.sh $@

rootfs: $(ROOTFS_TAR)  ## the offline build's base, as a tarball to `docker import` (root)

containers-preflight:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make test-containers cannot run: it needs root, to install docker.io," \
			"docker-compose and debootstrap and to start a Docker engine of its own." >&2; \
		exit 1; fi
	@command -v dockerd >/dev/null && command -v docker-compose >/dev/null && \
		command -v debootstrap >/dev/null || \
		sh tests/support/apt-install.sh docker.io docker-compose debootstrap

test-containers: containers-preflight install wheelhouse rootfs
	$(PY) -m pytest tests/containers -v --timeout=900 --durations=5

lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy distributed workers imaging devcluster common imgproc_cli

# docs/settings.md, generated from the settings declarations (common/settings.py).
docs: install
	$(PY) -m common.settingsdoc

bench: install
	$(PY) bench/bench_batch.py --start-server
	$(PY) bench/bench_distributed.py

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
