"""A fast reply receiver for the delivery benchmarks, in a process of its own: HTTP/1.1 with keep-alive on a bare
asyncio protocol (no framework, so it takes as little of the shared cores as a receiver can), counting each POST.
Signatures are checked when the stats are asked for, off the request path.

    python bench/receiver.py --port 8765 --secret S

POST /replies           answered by the current mode: ok (200), fail (503) or hang (never answered)
POST /mode?to=fail      switch mode; answers the switch's time (time.time())
GET  /stats?expect=N    {"requests", "distinct", "repeats", "bad_signatures", "bad_keys", "by_mode", "complete_at",
                        "switched_at"}: complete_at is when the distinct reply ids reached N
GET  /stats?times=1     the same, with "times": when each reply arrived (time.time()), in order
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit


class State:
    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.mode = "ok"
        self.switched_at = time.time()
        self.by_mode: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        self.unchecked: list[tuple[bytes, str, str]] = []  # body, signature, idempotency key
        self.bad_signatures = self.bad_keys = 0
        self.expect = 0
        self.complete_at: float | None = None
        self.times: list[float] = []

    def reply(self, body: bytes, headers: dict[str, str]) -> None:
        self.unchecked.append((body, headers.get("x-hub-signature-256", ""), headers.get("idempotency-key", "")))
        self.times.append(time.time())
        reply_id = json.loads(body)["data"]["id"]
        self.counts[reply_id] = self.counts.get(reply_id, 0) + 1
        self.completed()

    def completed(self) -> None:
        if self.complete_at is None and self.expect and len(self.counts) >= self.expect:
            self.complete_at = time.time()

    def stats(self) -> dict:
        for body, signature, key in self.unchecked:
            expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            self.bad_signatures += not hmac.compare_digest(signature, expected)
            self.bad_keys += key != json.loads(body)["data"]["id"]
        self.unchecked.clear()
        self.completed()
        return {
            "requests": sum(self.by_mode.values()),
            "distinct": len(self.counts),
            "repeats": sum(self.counts.values()) - len(self.counts),
            "bad_signatures": self.bad_signatures,
            "bad_keys": self.bad_keys,
            "by_mode": self.by_mode,
            "complete_at": self.complete_at,
            "switched_at": self.switched_at,
        }


def answer(status: str, body: bytes) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nContent-Type: text/plain\r\n\r\n".encode() + body


OK = answer("200 OK", b"ok")
DOWN = answer("503 Service Unavailable", b"down")


class Receiver(asyncio.Protocol):
    def __init__(self, state: State) -> None:
        self.state = state
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", 0))
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, target, _ = head[0].split(" ", 2)
            self.handle(method, target, headers, body)

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        url = urlsplit(target)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        state = self.state
        if url.path == "/replies":
            state.by_mode[state.mode] = state.by_mode.get(state.mode, 0) + 1
            if state.mode == "hang":
                return  # never answered; the sender times out and closes the connection
            if state.mode == "fail":
                self.transport.write(DOWN)
                return
            state.reply(body, headers)
            self.transport.write(OK)
        elif url.path == "/mode":
            state.mode, state.switched_at = query["to"], time.time()
            self.transport.write(answer("200 OK", json.dumps({"switched_at": state.switched_at}).encode()))
        elif url.path == "/stats":
            state.expect = int(query.get("expect", state.expect))
            stats = state.stats() | ({"times": state.times} if query.get("times") else {})
            self.transport.write(answer("200 OK", json.dumps(stats).encode()))
        else:
            self.transport.write(answer("404 Not Found", b""))


async def serve(port: int, secret: str) -> None:
    state = State(secret)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Receiver(state), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.secret))


if __name__ == "__main__":
    main()
