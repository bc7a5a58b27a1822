"""A real HTTP receiver of reply deliveries on 127.0.0.1: it answers from a script and records every request.

receiver = Receiver().start()
receiver.answers = [500, 500, 500]      # the next three POSTs get 500, then the default (200)
receiver.answers = [(429, {"Retry-After": "1"})]
receiver.hold = 5.0                     # keep each request waiting 5 s before answering
receiver.stop(); receiver.start()       # down and back up, on the same port
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.e2e.stack import free_port


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
        self.received: list[Received] = []
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
                with receiver.lock:
                    receiver.received.append(Received(dict(self.headers), body))
                    answer = receiver.answers.pop(0) if receiver.answers else receiver.default
                if receiver.hold:
                    time.sleep(receiver.hold)
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self) -> list[str]:
        """The reply id of each request received, in order (repeats included)."""
        with self.lock:
            return [request.json["data"]["id"] for request in self.received]
