#!/usr/bin/env bash
# The whole test suite: lint, then pytest (unit, API and end-to-end tests on the real PostgreSQL and Redis).
set -euo pipefail
cd "$(dirname "$0")/.."

.venv/bin/ruff check .
.venv/bin/ruff format --check .
# loadfile: each end-to-end file starts its own stack in one pytest worker; files run in parallel.
exec .venv/bin/pytest -n "${PYTEST_WORKERS:-4}" --dist loadfile "$@"
