#!/usr/bin/env bash
# The local run: the same three processes as docker compose (web, worker, beat), started through the same
# bin/entrypoint.sh by honcho (Procfile). Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

set -a
# shellcheck disable=SC1091
[ -f .env ] && . ./.env
set +a
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-realmate.settings.local}"
export PATH="$PWD/.venv/bin:$PATH"

python scripts/create_database.py
exec honcho start -f Procfile "$@"
