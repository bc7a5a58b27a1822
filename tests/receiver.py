"""A real HTTP receiver of reply deliveries on 127.0.0.1: it answers from a script and records every request.

receiver = Receiver().start()
receiver.answers = [500, 500, 500]      # the next three POSTs get 500, then the default (200)
receiver.answers = [(429, {"Retry-After": "1"})]
receiver.answers = [(500, {}, b"x" * 10**8)]  # a status, headers and a body
receiver.hold = 5.0                     # keep each request waiting 5 s before answering
receiver.stop(); receiver.start()       # down and back up, on the same port
receiver.verifier = check               # a request for which check(request) is false gets 401 "bad signature"
"""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.e2e.stack import free_port


class Server(ThreadingHTTPServer):
    # Batches open many connections at once; with the default backlog (5) the kernel drops the excess connection
    # attempts, the sender retries them a second later, and a 1 s timeout would count them as timeouts.
    request_queue_size = 128


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.answers: list = []
        self.default = 200
        self.hold = 0.0
        self.scripts: dict[str, list] = {}
        self.holds: dict[str, float] = {}
        self.received: list[Received] = []
        self.verifier: Callable[[Received], bool] | None = None
        self.answers_cut_short = 0  # answers the sender hung up on before reading them whole
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/replies"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Received(dict(self.headers), body)
                with receiver.lock:
                    receiver.received.append(request)
                    answer, hold = receiver.answer_for(request)
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                if hold:
                    time.sleep(hold)
                with receiver.lock:
                    receiver.in_flight -= 1
                status, headers, content = (*answer, b"ok")[:3] if isinstance(answer, tuple) else (answer, {}, b"ok")
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                except OSError:  # the sender gave up (a timeout) or died: what it sent is recorded all the same
                    with receiver.lock:
                        receiver.answers_cut_short += 1

            def log_message(self, *args) -> None:
                pass

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def script(self, conversation_id, answers: list, hold: float = 0.0) -> None:
        """The next answers to one conversation's replies, each sent after `hold` seconds; then the default."""
        with self.lock:
            self.scripts[str(conversation_id)] = list(answers)
            self.holds[str(conversation_id)] = hold

    def answer_for(self, request: Received) -> tuple:
        if self.verifier is not None and not self.verifier(request):
            return (401, {}, b"bad signature"), 0.0
        try:
            conversation_id = request.json["data"]["conversation_id"]
        except (ValueError, KeyError, TypeError):
            conversation_id = None
        script = self.scripts.get(conversation_id)
        if script:
            return script.pop(0), self.holds.get(conversation_id, 0.0)
        if self.answers:
            return self.answers.pop(0), self.hold
        return self.default, self.hold

    def received_for(self, conversation_id) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.json["data"]["conversation_id"] == str(conversation_id)]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self) -> list[str]:
        """The reply id of each request received, in order (repeats included)."""
        with self.lock:
            return [request.json["data"]["id"] for request in self.received]
