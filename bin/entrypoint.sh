#!/usr/bin/env bash
# The one entrypoint of every process, in the containers and in the local run (Procfile):
#   entrypoint.sh web     wait for the database, migrate, collectstatic, setup_periodic_tasks, gunicorn
#   entrypoint.sh worker    celery worker (reply jobs and sweeps)
#   entrypoint.sh delivery  celery worker of the delivery queue (replies POSTed to REPLY_WEBHOOK_URL)
#   entrypoint.sh beat    celery beat with django-celery-beat's DatabaseScheduler
# Their container healthchecks are bin/healthcheck <role>.
# Every setting comes from the environment (env.example lists them); python is whichever is first on PATH.
set -euo pipefail

cd "$(dirname "$0")/.."
role="${1:-web}"

# With SECRET_KEY unset and SECRET_KEY_FILE set (the image sets it, in a volume every role mounts), the first
# role to start generates a random key into that file and every role, now and after restarts, reads the same
# one (realmate/settings/production.py). `ln` is atomic: if two roles race, one link wins and both read it.
secret_key_ensure() {
  if [ -n "${SECRET_KEY:-}" ] || [ -z "${SECRET_KEY_FILE:-}" ] || [ -s "$SECRET_KEY_FILE" ]; then
    return 0
  fi
  local draft="$SECRET_KEY_FILE.$$"
  (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(50))' > "$draft")
  if ln "$draft" "$SECRET_KEY_FILE" 2>/dev/null; then
    echo '{"level": "WARNING", "logger": "entrypoint", "message": "SECRET_KEY is not set: generated one into '"$SECRET_KEY_FILE"' (kept across restarts in its volume)"}' >&2
  fi
  rm -f "$draft"
}

# Run a long-lived process and start it again if it dies on its own: a last resort (a broker outage does not
# end the worker or beat: they reconnect every second). A TERM or INT is passed on and ends the loop.
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
# The default number of Celery processes: one per core, at most 4 (nproc does not see a container's CPU quota, and
# each process holds a database connection; past a few processes PostgreSQL, not the worker, is the limit).
cores_up_to_4() {
  local cores
  cores="$(nproc)"
  echo $((cores < 4 ? cores : 4))
}
[ $# -gt 0 ] && shift

# prometheus_client names each process's metrics file by its pid, and containers that share the metrics volume can
# run the same pid: each host writes in a directory of its own, and /metrics adds up all of them
# (realmate/metrics_api.py).
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  export PROMETHEUS_MULTIPROC_DIR="$PROMETHEUS_MULTIPROC_DIR/$(hostname)"
fi

case "$role" in
  web | worker | delivery | beat) secret_key_ensure ;;
esac

case "$role" in
  web)
    python manage.py wait_for_db --timeout 60
    # migrate runs the system checks: their warnings (e.g. an unset WEBHOOK_SECRET) show once per start here.
    python manage.py migrate --noinput
    # The image collects its static files when it is built; the local run collects them here.
    if [ "${COLLECTSTATIC_ON_START:-true}" = "true" ]; then
      python manage.py collectstatic --noinput --verbosity 0
    fi
    python manage.py setup_periodic_tasks
    exec python -m gunicorn realmate.wsgi:application \
      --bind "${BIND:-0.0.0.0:${PORT:-8000}}" \
      --workers "${WEB_CONCURRENCY:-2}" \
      --worker-class "${GUNICORN_WORKER_CLASS:-sync}" \
      --threads "${GUNICORN_THREADS:-1}" \
      --timeout 30 \
      --graceful-timeout 10 \
      --keep-alive 5 \
      --no-control-socket \
      "$@"
    ;;
  worker)
    python manage.py wait_for_db --migrated --timeout 60
    # Every queue the settings declare (CELERY_TASK_QUEUES), sweeps first, except the delivery role's.
    export LIVENESS_ROLE=worker  # the liveness file its healthcheck reads (bin/healthcheck worker)
    supervise python -m celery -A realmate worker \
      --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${CELERY_CONCURRENCY:-$(cores_up_to_4)}" \
      --hostname "worker@%h" \
      --exclude-queues delivery \
      --without-gossip --without-mingle \
      "$@"
    ;;
  delivery)
    python manage.py wait_for_db --migrated --timeout 60
    # Each process runs one batch at a time with REPLY_WEBHOOK_CONCURRENCY POSTs in flight: one per core is enough.
    export LIVENESS_ROLE=delivery
    supervise python -m celery -A realmate worker \
      --loglevel "${LOG_LEVEL:-INFO}" \
      --concurrency "${DELIVERY_CONCURRENCY:-$(cores_up_to_4)}" \
      --hostname "delivery@%h" \
      --queues delivery \
      --without-gossip --without-mingle \
      "$@"
    ;;
  beat)
    python manage.py wait_for_db --migrated --timeout 60
    # The scheduler is CELERY_BEAT_SCHEDULER: django-celery-beat's DatabaseScheduler; its logging, scheduler/beat.py.
    supervise python -m celery -A realmate beat \
      --loglevel "${LOG_LEVEL:-INFO}" \
      --pidfile= \
      "$@"
    ;;
  *)
    # Anything else runs as a command in the same environment (e.g. `entrypoint.sh python manage.py shell`).
    exec "$role" "$@"
    ;;
esac
