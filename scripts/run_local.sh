#!/usr/bin/env bash
# The local run: the same four processes as docker compose (web, worker, delivery, beat), started through the same
# bin/entrypoint.sh by honcho (Procfile), against the local PostgreSQL and Redis. Ctrl-C stops them all.
#
# Settings, first match wins: the shell's environment; the local defaults below; then .env (optional).
set -euo pipefail
cd "$(dirname "$0")/.."

export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-realmate.settings.local}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/realmate}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0}"
# No proxy in front here: threaded workers, so one slow client holds a thread, not a whole worker.
export GUNICORN_WORKER_CLASS="${GUNICORN_WORKER_CLASS:-gthread}"
export GUNICORN_THREADS="${GUNICORN_THREADS:-8}"
if [ -f .env ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in '' | '#'*) continue ;; esac
    key="${line%%=*}"
    [ -z "${!key+x}" ] && export "$key=${line#*=}"
  done < .env
fi
export PATH="$PWD/.venv/bin:$PATH"
# Every process's metrics files (core/metrics.py); emptied here, as all the processes start together.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/.metrics}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"

python scripts/create_database.py
if [ -f frontend/package.json ] && [ -z "${SKIP_FRONTEND_BUILD:-}" ]; then
  scripts/build_frontend.sh
fi
# -p: honcho hands each process a PORT counting up from this one; web comes first in the Procfile.
exec honcho start -f Procfile -e /dev/null -p "${PORT:-8000}" "$@"
