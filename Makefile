# make run   start the service locally (web, worker, beat) against the local PostgreSQL and Redis
# make test  run the linters and the whole test suite
# make test-fast  the linters and the tests that start no process and no browser (a developer's quick loop)
# make bench run the benchmarks (not part of the tests)
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3

.PHONY: run test test-fast bench services venv

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

services:
	scripts/ensure_services.sh

test: venv services
	scripts/test.sh

test-fast: venv services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest -n 2 -m "not e2e and not compose and not browser"

run: venv services
	scripts/run_local.sh

bench: venv services
	$(VENV)/bin/python bench/webhook_bench.py
	$(VENV)/bin/python bench/sweep_bench.py
