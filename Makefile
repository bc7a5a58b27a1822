# make run   start the service locally (web, worker, delivery, beat) against the local PostgreSQL and Redis
# make test  run the linters and the whole test suite
# make test-fast  the linters and the tests that start no process and no browser (a developer's quick loop)
# make bench run the benchmarks (not part of the tests)
# make lock  regenerate requirements*.txt (pinned, hashed) from requirements*.in
# make createsuperuser  an admin user in the local run's database (created and migrated if need be), whatever .env says
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3

.PHONY: run test test-fast bench services venv createsuperuser lock

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

# Regenerate the pinned, hashed requirements*.txt from requirements*.in (after editing an .in file, or with
# UPGRADE=--upgrade to take the newest releases the .in files allow).
lock: venv
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links $(UPGRADE) --output-file requirements.txt requirements.in
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links $(UPGRADE) --output-file requirements-dev.txt requirements-dev.in

venv: $(VENV)/.installed

services:
	scripts/ensure_services.sh

test: venv services
	scripts/test.sh

test-fast: venv services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/pytest -n 2 -m "not e2e and not compose and not browser"

# The local run's database, as scripts/run_local.sh sets it: the shell's environment comes before .env.
createsuperuser: venv services
	export DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-realmate.settings.local} \
		DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/realmate} && \
	$(VENV)/bin/python scripts/create_database.py && \
	$(VENV)/bin/python manage.py migrate --noinput --verbosity 0 && \
	$(VENV)/bin/python manage.py createsuperuser $(ARGS)

run: venv services
	scripts/run_local.sh

bench: venv services
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(VENV)/bin/python bench/webhook_bench.py
	$(VENV)/bin/python bench/history_bench.py --keep
