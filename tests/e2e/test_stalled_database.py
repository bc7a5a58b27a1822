"""A database that stops answering without refusing connections (a frozen network path): the webhook answers
503 JSON within 5 s, and once the path thaws, the sender's retry is taken and answered once."""

import socket
import threading
import time
import uuid
from http import HTTPStatus

import pytest

from tests.e2e.conftest import SHORT_WINDOWS, started
from tests.e2e.scenario import reply_text
from tests.e2e.stack import Stack, free_port
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


class FreezableProxy:
    """A TCP proxy of the test's own in front of PostgreSQL. Frozen, it keeps every connection open and accepts
    new ones, but forwards nothing: what it receives waits until it thaws."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.frozen = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for source, destination in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, destination), daemon=True).start()

    def _pump(self, source: socket.socket, destination: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.frozen.is_set():
                    time.sleep(0.05)
                destination.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, destination):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture(scope="module")
def proxy():
    from django.conf import settings

    db = settings.DATABASES["default"]
    proxy = FreezableProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    yield proxy
    proxy.frozen.clear()
    proxy.close()


# Both worker classes the project ships: sync (the image's) and threaded (`make run`'s), where queries run outside
# gunicorn's main thread.
@pytest.fixture(scope="module", params=[("sync", "1"), ("gthread", "4")], ids=["sync", "gthread"])
def stack(proxy, request):
    worker_class, threads = request.param
    env = {**SHORT_WINDOWS, "GUNICORN_WORKER_CLASS": worker_class, "GUNICORN_THREADS": threads}
    stack = Stack(f"stalled-{worker_class}", env=env, workers=1, beats=1)
    # Every process of the stack reaches PostgreSQL through the proxy; the test's own queries go direct.
    stack.extra_env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{proxy.port}/{stack.db_name}"
    yield from started(stack)


def new_message(conversation_id, message_id) -> dict:
    data = {"id": str(message_id), "content": "oi", "conversation_id": str(conversation_id)}
    return {"type": "NEW_MESSAGE", "timestamp": "2025-06-04T14:20:05Z", "data": data}


def test_a_frozen_database_path_gets_503_within_5_s_and_the_retry_is_answered_once(stack, proxy):
    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()
    created = stack.post(
        {"type": "NEW_CONVERSATION", "timestamp": "2025-06-04T14:20:00Z", "data": {"id": str(conversation_id)}}
    )
    assert created.status_code == HTTPStatus.CREATED

    proxy.frozen.set()
    try:
        answers = []
        for _ in range(3):  # a query on a live connection, then fresh connections that cannot finish connecting
            started = time.monotonic()
            response = stack.post(new_message(conversation_id, message_id), timeout=30)
            answers.append((response.status_code, response.json()["code"], time.monotonic() - started))
    finally:
        proxy.frozen.clear()

    assert [(status, code) for status, code, _ in answers] == [
        (HTTPStatus.SERVICE_UNAVAILABLE, "database_unavailable")
    ] * 3
    assert max(seconds for _, _, seconds in answers) < 5
    # The sender retries: stored now, or found stored already if a held query reached PostgreSQL on the thaw.
    retry = wait_until(lambda: stack.post(new_message(conversation_id, message_id)), timeout=20, what="the retry")
    assert retry.status_code in (HTTPStatus.ACCEPTED, HTTPStatus.OK)
    wait_until(
        lambda: any(m["type"] == "OUTBOUND" for m in stack.conversation(conversation_id)["messages"]),
        timeout=30,
        what="the reply",
    )
    stack.sweeps_pass()  # a duplicate would have been written by now
    messages = stack.conversation(conversation_id)["messages"]
    assert [m["id"] for m in messages if m["type"] == "INBOUND"] == [str(message_id)]
    assert [m["content"] for m in messages if m["type"] == "OUTBOUND"] == [reply_text([message_id])]
