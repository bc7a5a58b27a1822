#!/usr/bin/env bash
# Start the local PostgreSQL and Redis if they are not answering (Debian packages, as on this project's machines).
set -euo pipefail

# "host port" of a URL (Python's parser: passwords, IPv6, no host); the port defaulting to $2, the host to 127.0.0.1.
url_host_port() {
  python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname or "127.0.0.1", p.port or sys.argv[2])' "$1" "$2"
}

is_local() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ] || [ "$1" = "::1" ]; }

# The exported DATABASE_URL and CELERY_BROKER_URL name the servers when set; PGHOST/PGPORT/REDIS_PORT otherwise.
if [ -n "${DATABASE_URL:-}" ]; then read -r PGHOST PGPORT <<<"$(url_host_port "$DATABASE_URL" 5432)"; fi
if [ -n "${CELERY_BROKER_URL:-}" ]; then read -r REDIS_HOST REDIS_PORT <<<"$(url_host_port "$CELERY_BROKER_URL" 6379)"; fi
PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"

# A server elsewhere is someone else's: checked, never installed or started here.
if ! is_local "$PGHOST"; then
  pg_isready -h "$PGHOST" -p "$PGPORT"
  PG_ELSEWHERE=1
fi
if ! is_local "$REDIS_HOST"; then
  echo "Redis is at $REDIS_HOST:$REDIS_PORT: not started here"
  REDIS_ELSEWHERE=1
fi

if [ -z "${PG_ELSEWHERE:-}" ] && ! pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; then
  echo "PostgreSQL is not answering on $PGHOST:$PGPORT; starting the local cluster"
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 1; done
fi

if [ -z "${REDIS_ELSEWHERE:-}" ] && ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "Redis is not answering on 127.0.0.1:$REDIS_PORT; starting it"
  if ! command -v redis-server >/dev/null; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  fi
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 30); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 1; done
fi

[ -n "${PG_ELSEWHERE:-}" ] || pg_isready -h "$PGHOST" -p "$PGPORT"
[ -n "${REDIS_ELSEWHERE:-}" ] || redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping
