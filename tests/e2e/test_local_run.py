"""`make run`'s script starts web, worker, delivery and beat with bin/entrypoint.sh; /healthz is 200, then 503 naming
Redis when Redis stops; Ctrl-C stops every process."""

import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings

from tests.e2e.stack import ROOT, RedisServer, free_port
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def local_run(tmp_path):
    db = settings.DATABASES["default"]
    db_name = f"realmate_localrun_{uuid.uuid4().hex[:8]}"  # does not exist yet: the script creates it
    redis_server = RedisServer(tmp_path)
    redis_server.start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db_name}",
        "CELERY_BROKER_URL": redis_server.url,
        "PORT": str(port),
        "BIND": f"127.0.0.1:{port}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "LOG_LEVEL": "WARNING",
        "SKIP_FRONTEND_BUILD": "1",
    }
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "run_local.sh")],
        cwd=ROOT,
        env=env,
        stdout=(tmp_path / "run.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process, f"http://127.0.0.1:{port}", redis_server, tmp_path / "run.log"
    finally:
        if process.poll() is None:
            # Ctrl-C first: honcho stops its children (they run in process groups of their own).
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        redis_server.stop()
        connection = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        connection.close()
        print((tmp_path / "run.log").read_text()[-4000:])


def processes_with_env(entry: str) -> list[int]:
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if entry.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def health(base_url: str) -> tuple[int, dict]:
    response = requests.get(f"{base_url}/healthz", timeout=5)
    return response.status_code, response.json()


def test_local_run_is_healthy_reports_redis_down_and_stops_on_ctrl_c(local_run):
    process, base_url, redis_server, log_path = local_run

    status, body = wait_until(
        lambda: (h := health(base_url))[0] == 200 and h, timeout=120, interval=0.5, what="/healthz 200"
    )
    assert body["status"] == "ok"

    redis_server.stop()
    status, body = wait_until(
        lambda: (h := health(base_url))[0] == 503 and h, timeout=20, interval=0.5, what="/healthz 503"
    )
    assert "redis" in body["failing"]
    assert body["checks"]["database"]["ok"] is True

    # gunicorn's own lines are JSON too (gunicorn.conf.py), as the application's are.
    web_lines = re.findall(r"^\S+ web\.1\s+\| (.*)$", log_path.read_text(), re.MULTILINE)
    assert any('"logger": "gunicorn.error"' in line and line.startswith("{") for line in web_lines), web_lines[:5]

    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does to the foreground process group
    assert process.wait(timeout=30) is not None
    # No web, worker or beat process is left (each carries this run's private Redis URL in its environment).
    assert wait_until(lambda: not processes_with_env(f"CELERY_BROKER_URL={redis_server.url}"), 15, what="all stopped")
