#!/usr/bin/env bash
# The one entrypoint of every process, in the containers and in the local run (Procfile):
#   entrypoint.sh web     wait for the database, migrate, collectstatic, setup_periodic_tasks, gunicorn
#   entrypoint.sh worker  celery worker (reply jobs and sweeps)
#   entrypoint.sh beat    celery beat with django-celery-beat's DatabaseScheduler
# Every setting comes from the environment (env.example lists them); python is whichever is first on PATH.
set -euo pipefail

cd "$(dirname "$0")/.."
role="${1:-web}"

# Run a long-lived process and start it again if it dies on its own (kombu 5.7 can exit with "Unrecoverable
# error" when Redis goes away while a job is being acknowledged). A TERM or INT is passed on and ends the loop.
supervise() {
  local child=""
  trap 'trap - TERM INT; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM INT
  while true; do
    "$@" &
    child=$!
    local code=0
    wait "$child" || code=$?
    [ "$code" -eq 0 ] && exit 0
    echo "{\"level\": \"ERROR\", \"logger\": \"entrypoint\", \"message\": \"$role exited with $code; restarting in 2 s\"}" >&2
    sleep 2
  done
}
[ $# -gt 0 ] && shift

case "$role" in
  web)
    python manage.py wait_for_db --timeout "${DB_WAIT_SECONDS:-60}"
    python manage.py migrate --noinput
    python manage.py collectstatic --noinput --verbosity 0
    python manage.py setup_periodic_tasks
    exec python -m gunicorn realmate.wsgi:application \
      --bind "${BIND:-0.0.0.0:${PORT:-8000}}" \
      --workers "${WEB_CONCURRENCY:-2}" \
      --worker-class "${GUNICORN_WORKER_CLASS:-sync}" \
      --threads "${GUNICORN_THREADS:-1}" \
      --timeout "${GUNICORN_TIMEOUT:-30}" \
      --graceful-timeout 10 \
      --keep-alive 5 \
      --no-control-socket \
      "$@"
    ;;
  worker)
    python manage.py wait_for_db --migrated --timeout "${DB_WAIT_SECONDS:-60}"
    supervise python -m celery -A realmate worker \
      --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-4}" \
      --queues sweep,celery \
      --hostname "${CELERY_HOSTNAME:-worker@%h}" \
      --without-gossip --without-mingle \
      "$@"
    ;;
  beat)
    python manage.py wait_for_db --migrated --timeout "${DB_WAIT_SECONDS:-60}"
    supervise python -m celery -A realmate beat \
      --loglevel "${CELERY_LOG_LEVEL:-INFO}" \
      --scheduler django_celery_beat.schedulers:DatabaseScheduler \
      --pidfile= \
      "$@"
    ;;
  *)
    # Anything else runs as a command in the same environment (e.g. `entrypoint.sh python manage.py shell`).
    exec "$role" "$@"
    ;;
esac
