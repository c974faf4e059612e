# The two commands of the quick start are `make run` and `make test`;
# both create the virtualenv and install what they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
WORKERS ?= 3
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runcluster --port $(PORT) --workers $(WORKERS)

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy distributed workers

bench: install
	$(PY) bench/bench_batch.py

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
