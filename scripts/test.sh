#!/usr/bin/env bash
# The whole test suite: lint, the UI's build and component tests, then pytest (unit, API, end-to-end tests on
# the real PostgreSQL and Redis, the UI in headless Chromium, the docs' diagrams).
set -euo pipefail
cd "$(dirname "$0")/.."

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-cache
scripts/build_frontend.sh
(cd frontend && npx vitest run)
# loadfile: each end-to-end file starts its own stack in one pytest worker; files run in parallel.
exec .venv/bin/pytest -n "${PYTEST_WORKERS:-4}" --dist loadfile "$@"
