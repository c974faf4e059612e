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


.PHONY: install run test test-deps netns lint docs bench clean stop ps demo logs worker-stop worker-start worker-kill worker-pause worker-resume

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runcluster --port $(PORT) --workers $(WORKERS)

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

# iproute2 (`ip netns`) for the multi-host tests; installed when missing and we are root.
test-deps:
	@command -v ip >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null) || \
		echo "iproute2 missing: the multi-host tests will be skipped"; }

netns: install test-deps  ## the multi-host fault tests only (root + iproute2)
	$(PY) -m pytest tests/multihost -v

test: install test-deps
	$(PY) -m ruff check .
	$(PY) -m mypy distributed workers imaging devcluster common
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy distributed workers imaging devcluster common

# docs/settings.md, generated from the settings declarations (common/settings.py).
docs: install
	$(PY) -m common.settingsdoc

bench: install
	$(PY) bench/bench_batch.py --start-server
	$(PY) bench/bench_distributed.py

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
