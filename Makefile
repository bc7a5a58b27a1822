# make run   start the service locally (web, worker, beat) against the local PostgreSQL and Redis
# make test  run the linters and the whole test suite
# make bench run the benchmarks (not part of the tests)
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3

.PHONY: run test bench services venv

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

run: venv services
	scripts/run_local.sh

bench: venv services
	$(VENV)/bin/python bench/webhook_bench.py
	$(VENV)/bin/python bench/sweep_bench.py
