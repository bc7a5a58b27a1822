"""A real running system for end-to-end tests: its own PostgreSQL database and Redis server, and gunicorn,
Celery workers and beats started through bin/entrypoint.sh exactly as the containers start them."""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
import requests
from django.conf import settings

from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private redis-server on a free port, so a test may stop and restart it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(self._pings, 10, what="redis up")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def _pings(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")


class Stack:
    """gunicorn + N workers + M beats (+ K delivery workers) on a fresh database; windows and knobs come in
    through `env`."""

    def __init__(
        self,
        name: str,
        *,
        env: dict[str, str] | None = None,
        workers: int = 1,
        beats: int = 1,
        deliverers: int = 0,
        root: Path = ROOT,
        python: Path | None = None,
    ) -> None:
        """`root` and `python`: another checkout of the code and its interpreter (benchmarks compare versions)."""
        self.name = name
        self.root = root
        self.python = python or Path(sys.executable)
        self.workdir = Path(tempfile.mkdtemp(prefix=f"e2e-{name}-"))
        self.db_name = f"realmate_e2e_{name}_{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.redis = RedisServer(self.workdir)
        self.extra_env = dict(env or {})  # a copy: callers pass shared constants (SHORT_WINDOWS)
        self.worker_count, self.beat_count, self.deliverer_count = workers, beats, deliverers
        self.processes: dict[str, subprocess.Popen] = {}
        self.http = requests.Session()

    # --- lifecycle
    def start(self) -> "Stack":
        try:
            self._start()
        except BaseException:  # it did not come up, or Ctrl-C / SIGTERM came meanwhile: leave nothing running
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._create_database()
        self.redis.start()
        self.start_role("web")
        wait_until(lambda: self.http.get(f"{self.base_url}/conversations/", timeout=2).ok, 90, 0.25, "web up")
        for index in range(self.worker_count):
            self.start_role("worker", f"worker{index}")
        for index in range(self.beat_count):
            self.start_role("beat", f"beat{index}")
        for index in range(self.deliverer_count):
            self.start_role("delivery", f"delivery{index}")
        if self.deliverer_count:
            # Booted and consuming before the caller sends anything: a worker still importing Django takes CPU.
            wait_until(lambda: self.healthcheck("delivery").returncode == 0, 90, 0.25, "delivery worker up")
        if self.worker_count and self.beat_count:
            wait_until(self.sweeping, 90, 0.25, "sweeps running")

    def sweeping(self) -> bool:
        """A sweep completed within the last two seconds: beat and a worker are both up."""
        rows = self.sql("SELECT last_sweep_at > clock_timestamp() - interval '2 seconds' FROM scheduler_sweepheartbeat")
        return bool(rows and rows[0][0])

    def nothing_pending(self) -> bool:
        """No message waits for a reply or for its conversation."""
        return self.sql(
            """SELECT (SELECT count(*) FROM chat_message WHERE pending)
                      + (SELECT count(*) FROM chat_parkedmessage WHERE state = 'PARKED')"""
        ) == [(0,)]

    def sweeps_pass(self, count: int = 3, timeout: float = 30) -> None:
        """Wait until `count` sweeps have completed from now on. Each wakes a reply job when anything is due, so
        a reply that could still be written (a duplicate, say) would be written by then."""
        for _ in range(count):
            [(now,)] = self.sql("SELECT clock_timestamp()")
            wait_until(
                lambda moment=now: (
                    self.sql("SELECT last_sweep_at > %s FROM scheduler_sweepheartbeat", (moment,)) == [(True,)]
                ),
                timeout=timeout,
                interval=0.05,
                what="a sweep",
            )

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_role(name)
        self.redis.stop()
        self._drop_database()
        # The logs stay in the workdir for reading a failure; the collected static files (33 MB a stack) and the
        # metrics files go.
        for generated in ("static", "metrics"):
            shutil.rmtree(self.workdir / generated, ignore_errors=True)

    def env(self, **overrides: str) -> dict[str, str]:
        db = settings.DATABASES["default"]
        venv_bin = str(self.python.parent)
        return {
            **os.environ,
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
            "DJANGO_SETTINGS_MODULE": "realmate.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "HEALTH_FILE_DIR": str(self.workdir),
            "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / "metrics"),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{self.db_name}",
            "CELERY_BROKER_URL": self.redis.url,
            "STATIC_ROOT": str(self.workdir / "static"),
            "PORT": str(self.port),
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": "2",
            "CELERY_CONCURRENCY": "2",
            "DELIVERY_CONCURRENCY": "2",
            "LOG_LEVEL": "WARNING",
            **self.extra_env,
            **overrides,
        }

    def start_role(
        self, role: str, name: str | None = None, args: tuple[str, ...] = (), **env: str
    ) -> subprocess.Popen:
        """Start `role` through the entrypoint; `args` go on to gunicorn or celery, `env` overrides the stack's."""
        name = name or role
        if role in ("worker", "delivery"):
            args = ("--hostname", f"{name}-{self.name}@%h", *args)  # stacks share a host: a node name per stack
        process = subprocess.Popen(
            [str(self.root / "bin" / "entrypoint.sh"), role, *args],
            cwd=self.root,
            env=self.env(**env),
            stdout=(self.workdir / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops gunicorn's and celery's children
        )
        self.processes[name] = process
        return process

    def stop_role(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            try:
                os.killpg(process.pid, sig)
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
            except ProcessLookupError:
                pass
        # Pool children may outlive a SIGKILLed parent for a moment; make sure nothing of the group is left.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def healthcheck(self, role: str) -> subprocess.CompletedProcess:
        """bin/healthcheck <role>, as the container runs it, with the environment of the stack's processes."""
        return subprocess.run(
            [str(ROOT / "bin" / "healthcheck"), role], env=self.env(), capture_output=True, text=True, timeout=10
        )

    def log(self, name: str) -> str:
        """Everything process `name` (a role, or worker0, beat0 ...) has logged so far."""
        return (self.workdir / f"{name}.log").read_text()

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(self.workdir.glob("*.log")))

    # --- HTTP
    def post(self, payload: dict, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.http.post(f"{self.base_url}/webhook/", json=payload, **kwargs)

    def conversation(self, conversation_id, session: requests.Session | None = None) -> dict:
        response = (session or self.http).get(f"{self.base_url}/conversations/{conversation_id}/", timeout=10)
        response.raise_for_status()
        return response.json()

    # --- database
    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with self._connect(self.db_name) as connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def connect(self) -> psycopg.Connection:
        """A session of the test's own on the stack's database, in a transaction until it is closed."""
        db = settings.DATABASES["default"]
        return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=self.db_name)

    def _connect(self, name: str):
        db = settings.DATABASES["default"]
        connection = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=name)
        connection.autocommit = True
        return connection

    def _create_database(self) -> None:
        connection = self._connect("postgres")
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{self.db_name}"')
        connection.close()

    def _drop_database(self) -> None:
        connection = self._connect("postgres")
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        connection.close()
