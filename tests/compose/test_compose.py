"""The documented Docker path, for real: in a temporary copy of the checkout, `cp env.example .env && docker compose
up --build`, then the service's life through restarts, a Redis outage and a full down/up. Skips only where this
machine has no Docker engine (CI installs one first: .ci/run)."""

import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
import requests

from tests.e2e.scenario import reply_text
from tests.e2e.stack import ROOT, free_port
from tests.helpers import wait_until

pytestmark = pytest.mark.compose

SERVICES = {"proxy", "db", "redis", "web", "worker", "delivery", "beat"}
WEB_CONCURRENCY = 2  # gunicorn's workers in the web container (bin/entrypoint.sh's default)
SHELL_VARIABLES = {"PATH", "HOME", "USER", "LANG", "TMPDIR"}
# The defaults of env.example: replies come 5 s after the last message of a burst.
REPLY_TIMEOUT = 30


def docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command on this machine"
    for command in (["docker", "info"], ["docker", "compose", "version"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            return f"`{' '.join(command)}` failed: {(result.stderr or result.stdout).strip()[:200]}"
    return None


class Compose:
    """One compose project in a copy of the checkout, on a free host port, with a name of its own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.project = f"realmate-compose-test-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        # A user's shell, not this test process's environment: compose passes shell variables on to the containers
        # (DJANGO_SETTINGS_MODULE of the test settings, for one), and they would win over .env.
        shell = {key: value for key, value in os.environ.items() if key in SHELL_VARIABLES or key.startswith("DOCKER_")}
        self.env = {**shell, "COMPOSE_PROJECT_NAME": self.project, "HTTP_PORT": str(self.port)}
        self.up_process: subprocess.Popen | None = None
        self.http = requests.Session()

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run(
            ["docker", "compose", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"docker compose {' '.join(args)}: {result.stderr[-2000:]}"
        return result

    def up(self) -> None:
        """The README's command as a user runs it: in the foreground, logs streaming (here into a file)."""
        log = (self.workdir / "compose-up.log").open("ab")
        self.up_process = subprocess.Popen(
            ["docker", "compose", "up", "--build"], cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def health(self) -> dict[str, str]:
        output = self.run("ps", "--all", "--format", "json").stdout
        # Compose prints one JSON object per line (older releases: one JSON array).
        rows = (
            json.loads(output)
            if output.lstrip().startswith("[")
            else [json.loads(line) for line in output.splitlines() if line.strip()]
        )
        return {row["Service"]: row.get("Health") or row.get("State", "") for row in rows}

    def wait_healthy(self, timeout: float = 420) -> None:
        def all_healthy() -> bool:
            assert self.up_process is None or self.up_process.poll() is None, self.logs()
            return self.health() == dict.fromkeys(SERVICES, "healthy")

        wait_until(all_healthy, timeout, 2, "every service healthy")

    def logs(self) -> str:
        result = subprocess.run(
            ["docker", "compose", "logs", "--no-color", "--tail", "60"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
        )
        up_log = self.workdir / "compose-up.log"
        return (up_log.read_text()[-3000:] if up_log.exists() else "") + result.stdout[-6000:]

    def down(self, *args: str) -> None:
        self.run("down", *args, timeout=180)
        if self.up_process is not None:
            self.up_process.wait(60)
            self.up_process = None

    # --- the service
    def post(self, event_type: str, data: dict) -> int:
        payload = {"type": event_type, "timestamp": "2025-06-04T14:20:00Z", "data": data}
        return self.http.post(f"{self.base_url}/webhook/", json=payload, timeout=10).status_code

    def burst(self) -> tuple[str, list[str], list[int]]:
        """A new conversation and a burst of two messages; returns the ids and the HTTP statuses."""
        conversation_id, message_ids = str(uuid.uuid4()), [str(uuid.uuid4()), str(uuid.uuid4())]
        statuses = [self.post("NEW_CONVERSATION", {"id": conversation_id})]
        for message_id in message_ids:
            data = {"id": message_id, "content": "oi", "conversation_id": conversation_id}
            statuses.append(self.post("NEW_MESSAGE", data))
        return conversation_id, message_ids, statuses

    def replies(self, conversation_id: str) -> list[str]:
        response = self.http.get(f"{self.base_url}/conversations/{conversation_id}/", timeout=10)
        return [m["content"] for m in response.json()["messages"] if m["type"] == "OUTBOUND"]

    def wait_reply(self, conversation_id: str, timeout: float = REPLY_TIMEOUT) -> list[str]:
        return wait_until(lambda: self.replies(conversation_id), timeout, 0.5, f"a reply in {conversation_id}")


def slow_client(port: int) -> socket.socket:
    """A webhook request whose headers promise a body it sends one byte at a time."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(
        b"POST /webhook/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    return sock


def checkout_copy(destination: Path) -> Path:
    """The files of the checkout as a clone would have them (tracked, plus new files not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def docker() -> None:
    problem = docker_problem()
    if problem:
        pytest.skip(f"no Docker engine here ({problem}); .ci/run provisions one where it can")


@pytest.fixture
def compose(docker, tmp_path) -> Iterator[Compose]:
    project = Compose(checkout_copy(tmp_path / "checkout"))
    try:
        yield project
    except BaseException:
        print(project.logs())
        raise
    finally:
        # Whatever happened: containers, network, volumes and the project's images go.
        subprocess.run(
            ["docker", "compose", "down", "-v", "--remove-orphans", "--rmi", "local", "--timeout", "5"],
            cwd=project.workdir,
            env=project.env,
            capture_output=True,
            timeout=300,
        )
        if project.up_process is not None and project.up_process.poll() is None:
            project.up_process.kill()


def test_readme_command_runs_the_service_through_restarts_an_outage_and_down_up(compose):
    shutil.copy(compose.workdir / "env.example", compose.workdir / ".env")
    compose.up()
    compose.wait_healthy()

    # The image's processes run as a user of their own, not root.
    assert compose.run("exec", "-T", "web", "id", "-u").stdout.strip() not in ("", "0")
    # Every setting in .env reaches every role, without compose naming it.
    for role in ("web", "worker", "delivery", "beat"):
        assert "REPLY_DELIVERY_MAX_SECONDS=86400" in compose.run("exec", "-T", role, "env").stdout.splitlines(), role

    first, first_ids, statuses = compose.burst()
    assert statuses == [HTTPStatus.CREATED, HTTPStatus.ACCEPTED, HTTPStatus.ACCEPTED]
    assert compose.wait_reply(first) == [reply_text(first_ids)]
    # /metrics on web adds up every container's processes: the reply was counted in the worker container.
    metrics = compose.http.get(f"{compose.base_url}/metrics", timeout=10).text
    assert 'realmate_replies_total{send_reason="quiet"} 1.0' in metrics
    assert 'realmate_webhook_requests_total{event="NEW_MESSAGE",outcome="stored"} 2.0' in metrics
    for path in ("/healthz", "/", "/admin/login/", "/api/docs/"):
        assert compose.http.get(f"{compose.base_url}{path}", timeout=10).status_code == HTTPStatus.OK, path

    too_long = compose.http.get(f"{compose.base_url}/conversations/?q={'a' * 20000}", timeout=10)
    assert too_long.status_code == HTTPStatus.REQUEST_URI_TOO_LONG
    assert too_long.json()["code"] == "bad_request"
    too_big = compose.http.post(f"{compose.base_url}/webhook/", data=b" " * (2 * 1024 * 1024), timeout=10)
    assert too_big.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert too_big.json()["code"] == "payload_too_large"

    # More slow clients than gunicorn has workers, each sending its body a byte at a time: the proxy holds them.
    slow = [slow_client(compose.port) for _ in range(WEB_CONCURRENCY + 1)]
    try:
        for _ in range(3):
            started = time.monotonic()
            assert compose.http.get(f"{compose.base_url}/healthz", timeout=5).status_code == HTTPStatus.OK
            assert time.monotonic() - started < 2
            for sock in slow:
                sock.sendall(b"x")
            time.sleep(1)
    finally:
        for sock in slow:
            sock.close()

    compose.run("restart", "worker")
    after_restart, after_restart_ids, _ = compose.burst()
    assert compose.wait_reply(after_restart) == [reply_text(after_restart_ids)]

    compose.run("stop", "redis")
    during = []
    outage_ends = time.monotonic() + 10
    while time.monotonic() < outage_ends:
        during.append(compose.burst())
        time.sleep(1)
    compose.run("start", "redis")
    assert {status for _, _, statuses in during for status in statuses} <= {HTTPStatus.CREATED, HTTPStatus.ACCEPTED}
    for conversation_id, message_ids, _ in during:
        assert compose.wait_reply(conversation_id) == [reply_text(message_ids)]
    worker_log = compose.run("logs", "worker").stdout
    assert "Unrecoverable error" not in worker_log
    assert "restarting in" not in worker_log

    compose.down()
    compose.up()
    compose.wait_healthy()
    assert compose.replies(first) == [reply_text(first_ids)]  # the data outlived the containers
    again, again_ids, _ = compose.burst()
    assert compose.wait_reply(again) == [reply_text(again_ids)]


def test_without_a_dotenv_file_the_service_starts_and_answers(compose):
    assert not (compose.workdir / ".env").exists()
    compose.up()
    compose.wait_healthy()

    conversation_id, message_ids, _ = compose.burst()

    assert compose.wait_reply(conversation_id) == [reply_text(message_ids)]
    # What the image sets reaches every role, though no .env names it.
    for role in ("web", "worker", "delivery", "beat"):
        env = compose.run("exec", "-T", role, "env").stdout.splitlines()
        assert "DJANGO_SETTINGS_MODULE=realmate.settings.production" in env, role
        assert "PROMETHEUS_MULTIPROC_DIR=/var/lib/realmate/metrics" in env, role
    # One key for every role, generated once and kept in the appdata volume.
    keys = {compose.run("exec", "-T", role, "cat", "/var/lib/realmate/secret_key").stdout for role in ("web", "beat")}
    assert len(keys) == 1
    assert len(keys.pop().strip()) >= 50
