"""deploy/nginx.conf, run by this machine's nginx in front of a stand-in for gunicorn: webhooks past the bounded
queue get a fast 503 with Retry-After, while reads and /healthz go through an upstream of their own."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.e2e.stack import free_port
from tests.nginx_proxy import NginxProxy, nginx_available

pytestmark = pytest.mark.skipif(not nginx_available(), reason="needs nginx (apt-get install nginx-light)")

# deploy/nginx.conf's max_conns for the webhook upstream.
WEBHOOK_BOUND = 64


class SlowWeb(ThreadingHTTPServer):
    """A web container that holds every webhook `hold` seconds and answers anything else at once."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    server.in_flight += 1
                    server.most_in_flight = max(server.most_in_flight, server.in_flight)
                time.sleep(server.hold)
                with server.lock:
                    server.in_flight -= 1
                self.answer(b'{"outcome": "stored"}')

            def do_GET(self) -> None:
                self.answer(b'{"status": "ok"}')

            def answer(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


@pytest.fixture
def slow_web():
    web = SlowWeb(hold=3.0)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    yield web
    web.shutdown()
    web.server_close()


@pytest.fixture
def proxy(slow_web):
    proxy = NginxProxy(upstream_port=slow_web.server_address[1], worker_processes=2).start()
    yield proxy
    proxy.stop()


def timed(call) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_webhooks_past_the_bound_get_a_fast_503_while_reads_and_healthz_pass(proxy, slow_web):
    extra = 16

    def webhook(_) -> tuple[requests.Response, float]:
        return timed(lambda: requests.post(f"{proxy.url}/webhook/", json={"type": "NEW_MESSAGE"}, timeout=30))

    with ThreadPoolExecutor(max_workers=WEBHOOK_BOUND + extra) as pool:
        flood = pool.map(webhook, range(WEBHOOK_BOUND + extra))
        time.sleep(1.0)  # the flood is in: the bound is full
        health, health_seconds = timed(lambda: requests.get(f"{proxy.url}/healthz", timeout=5))
        read, _ = timed(lambda: requests.get(f"{proxy.url}/conversations/", timeout=5))
        answers = list(flood)

    shed = [(response, seconds) for response, seconds in answers if response.status_code == 503]
    stored = [response for response, _ in answers if response.status_code == 200]
    assert (len(stored), len(shed)) == (WEBHOOK_BOUND, extra)
    assert slow_web.most_in_flight == WEBHOOK_BOUND
    for response, seconds in shed:
        assert seconds < 1.0  # not queued: answered at once
        assert response.headers["Retry-After"] == "1"
        assert response.json()["code"] == "overloaded"
    assert (health.status_code, read.status_code) == (HTTPStatus.OK, HTTPStatus.OK)
    assert health_seconds < 1.0


def test_a_webhook_with_no_web_container_up_gets_the_same_503():
    proxy = NginxProxy(upstream_port=free_port()).start()  # nothing listens there
    try:
        response = requests.post(f"{proxy.url}/webhook", json={}, timeout=10)
    finally:
        proxy.stop()

    assert (response.status_code, response.headers["Retry-After"]) == (503, "1")
    assert json.loads(response.content)["code"] == "overloaded"


def test_the_webhooks_location_keeps_the_servers_json_413(proxy):
    response = requests.post(
        f"{proxy.url}/webhook/",
        data=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
