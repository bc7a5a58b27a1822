"""Overload benchmark: the whole stack offered about twice what it holds, through deploy/nginx.conf's bounded queue
and, side by side, straight to gunicorn (no proxy: a queue without end, as before the bound).

    python bench/overload_bench.py [--seconds 20] [--factor 2] [--probe-seconds 8] [--conversations 2000]

One stack for both runs: gunicorn (2 sync workers), a worker of 2 processes, beat, and a delivery worker of 2
processes POSTing every reply to bench/receiver.py, at the true 5 s window. First a probe: 48 senders in a closed
loop through the proxy for --probe-seconds; what it holds is its rate of 2xx. Then each run offers --factor times
that rate, open loop, for --seconds: NEW_MESSAGE to one of --conversations open conversations, each message its
own id, from a sender that retries no answer, a 409 or a 5xx after Retry-After (1 s when absent) x 2^(retry - 1)
seconds, jittered, up to 32 s, as webhook senders do, until it gets a 2xx (another 4xx: refused). Attempts are timed
from when they are made, a wait for one of the sender's 512 connections included. Prints per run: attempts, 503s,
the share of attempts answered (whatever the status) within 1 s, the 2xx latency (p50, p99, max), each message's
wait from its schedule to its 2xx (its backoff included), and, once every group is answered and
every reply delivered, that every message was accepted once, answered by one reply, and delivered once; and
/healthz, asked four times a second during the run: its slowest answer, and how many were not 200.

Everything shares this machine's two cores, the sender included: read the rows against each other. Needs nginx
(apt-get install nginx-light), a local PostgreSQL and redis-server.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.capacity_bench import STAMP  # noqa: E402 (after the path is set)
from bench.delivery_bench import SECRET, ReceiverProcess  # noqa: E402
from bench.shutdown import sigterm_exits  # noqa: E402

ATTEMPT_TIMEOUT_SECONDS = 30
BACKOFF_CAP_SECONDS = 32.0
PROBE_SENDERS = 48
SENDER_CONNECTIONS = 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--factor", type=float, default=2.0)
    parser.add_argument("--probe-seconds", type=float, default=8)
    parser.add_argument("--conversations", type=int, default=2000)
    args = parser.parse_args()
    sigterm_exits()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.test")
    import django

    django.setup()
    from tests.e2e.stack import Stack
    from tests.nginx_proxy import NginxProxy

    receiver = ReceiverProcess().start()
    stack = Stack(
        "overload",
        env={
            "REPLY_WEBHOOK_URL": f"{receiver.url}/replies",
            "REPLY_WEBHOOK_SECRET": SECRET,
            "LOG_LEVEL": "WARNING",
        },
        deliverers=1,
    )
    proxy = None
    try:
        stack.start()
        proxy = NginxProxy(upstream_port=stack.port, worker_processes=1).start()
        conversations = conversations_open(stack, args.conversations)
        held = asyncio.run(probe(proxy.url, conversations, args.probe_seconds))
        settle(stack, receiver, receiver.stats())  # the probe's messages answered, delivered and removed
        offered = held * args.factor
        print(
            f"\noverload: the stack holds {held:.0f} webhooks/s ({PROBE_SENDERS} senders in a closed loop through the"
            f" proxy, {args.probe_seconds:g} s); offered {offered:.0f}/s ({args.factor:g}x) for {args.seconds:g} s by a"
            " sender that retries 503 with backoff\n"
        )
        rows = []
        for label, url in (("through the proxy (bounded queue)", proxy.url), ("straight to gunicorn", stack.base_url)):
            before = receiver.stats()
            result = asyncio.run(offer(url, conversations, offered, args.seconds))
            rows.append((label, result | settle(stack, receiver, before)))
            print(
                f"{label}: the sender's first attempts left their schedule late by {result['late_p99']:.3f} s (p99);"
                f" its event loop woke late by {result['lag_p99']:.3f} s (p99), {result['lag_max']:.3f} s at most"
            )
    finally:
        if proxy is not None:
            proxy.stop()
        stack.stop()
        receiver.stop()
    print(
        "| path | messages | attempts | 503s | attempts answered within 1 s | 2xx p50 ms | 2xx p99 ms | 2xx max ms"
        " | a message's wait for its 2xx, p50 / p99 s | seconds to accept all | refused | /healthz max ms (not 200)"
        " | accepted once | answered once | delivered once |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|")
    for label, r in rows:
        print(
            f"| {label} | {r['messages']} | {r['attempts']} | {r['shed']} | {r['within_1s']:.4f} | {r['p50']:.0f} | "
            f"{r['p99']:.0f} | {r['max']:.0f} | {r['waited_p50']:.2f} / {r['waited_p99']:.2f} | "
            f"{r['accepted_after']:.1f} | {r['refused']} | "
            f"{r['health_max']:.0f} ({r['health_failed']}) | {r['accepted_once']} | {r['answered_once']} | "
            f"{r['delivered_once']} |"
        )


def conversations_open(stack, count: int) -> list[str]:
    rows = stack.sql(
        f"""INSERT INTO chat_conversation (id, status, created_at, updated_at)
            SELECT gen_random_uuid(), 'OPEN', now(), now() FROM generate_series(1, {count}) RETURNING id"""
    )
    return [str(row[0]) for row in rows]


def message(conversations: list[str]) -> dict:
    data = {"id": str(uuid.uuid4()), "content": "oi", "conversation_id": random.choice(conversations)}
    return {"type": "NEW_MESSAGE", "timestamp": STAMP, "data": data}


class Sender:
    """HTTP/1.1 POSTs of JSON from a pool of up to SENDER_CONNECTIONS keep-alive connections, on bare asyncio
    streams: aiohttp costs several times more CPU a request, and on these two shared cores the sender's CPU is the
    service's. An attempt is timed from when it is made, a wait for a free connection included: past the pool's
    size, requests queue here as they would in a fleet of senders' sockets."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(SENDER_CONNECTIONS)

    async def post(self, path: str, body: bytes) -> tuple[int, float | None, float]:
        """(status, Retry-After seconds, seconds from the request's start to its answer); status 0 when there was no
        answer (refused, reset, timed out)."""
        started = time.monotonic()
        async with self.slots:
            pooled = bool(self.idle)
            status, retry_after = await self._post(path, body)
            if status == 0 and pooled:  # a kept-alive connection the server had closed meanwhile: a fresh one
                status, retry_after = await self._post(path, body, fresh=True)
        return status, retry_after, time.monotonic() - started

    async def _post(self, path: str, body: bytes, *, fresh: bool = False) -> tuple[int, float | None]:
        connection = self.idle.pop() if self.idle and not fresh else None
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT_SECONDS):
                if connection is None:
                    connection = await asyncio.open_connection(self.host, self.port)
                reader, writer = connection
                writer.write(
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                status = int((await reader.readline()).split()[1])
                headers = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", 0)))
        except (OSError, TimeoutError, asyncio.IncompleteReadError, IndexError, ValueError):
            if connection is not None:
                connection[1].close()
            return 0, None
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append(connection)
        retry_after = headers.get("retry-after")
        return status, float(retry_after) if retry_after else None

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def sender_for(url: str) -> Sender:
    host, port = url.removeprefix("http://").split(":")
    return Sender(host, int(port))


async def probe(url: str, conversations: list[str], seconds: float) -> float:
    """2xx a second from PROBE_SENDERS senders in a closed loop."""
    ok = 0
    sender = sender_for(url)
    until = time.monotonic() + seconds

    async def loop() -> None:
        nonlocal ok
        while time.monotonic() < until:
            status, _, _ = await sender.post("/webhook/", json.dumps(message(conversations)).encode())
            ok += 200 <= status < 300

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(PROBE_SENDERS)))
    sender.close()
    return ok / (time.monotonic() - started)


async def offer(url: str, conversations: list[str], rate: float, seconds: float) -> dict:
    """`rate` messages a second for `seconds`, each retried after no answer, 409 or a 5xx, until it gets a 2xx (or
    another 4xx: refused)."""
    attempts: list[tuple[float, int]] = []  # (seconds, status; 0: no answer)
    accepted: list[float] = []  # when each message was accepted, from the run's start
    waited: list[float] = []  # from each message's schedule to its 2xx, its retries included
    refused = 0
    late: list[float] = []  # how late each message's first attempt left its schedule
    health: list[tuple[float, int]] = []
    count = int(rate * seconds)
    sender = sender_for(url)
    started = time.monotonic()

    async def send(body: bytes, scheduled: float) -> None:
        nonlocal refused
        for retry in range(1000):
            status, retry_after, seconds = await sender.post("/webhook/", body)
            attempts.append((seconds, status))
            if 200 <= status < 300:
                accepted.append(time.monotonic() - started)
                waited.append(time.monotonic() - scheduled)
                return
            if 400 <= status < 500 and status != 409:
                refused += 1
                return
            backoff = min(BACKOFF_CAP_SECONDS, (retry_after or 1.0) * 2**retry)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))

    lags: list[float] = []
    watching = asyncio.create_task(health_watch(url, health))
    lagging = asyncio.create_task(loop_lag(lags))
    tasks = []
    for index in range(count):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        late.append(max(0.0, -delay))
        tasks.append(asyncio.create_task(send(json.dumps(message(conversations)).encode(), started + index / rate)))
    await asyncio.gather(*tasks)
    watching.cancel()
    lagging.cancel()
    sender.close()
    answered = sorted(seconds for seconds, status in attempts if 200 <= status < 300)
    waited.sort()
    return {
        "refused": refused,
        "waited_p50": statistics.median(waited),
        "waited_p99": waited[int(0.99 * (len(waited) - 1))],
        "messages": count,
        "attempts": len(attempts),
        "shed": sum(1 for _, status in attempts if status == 503),
        "within_1s": sum(1 for seconds, status in attempts if status and seconds <= 1.0) / len(attempts),
        "p50": statistics.median(answered) * 1000,
        "p99": answered[int(0.99 * (len(answered) - 1))] * 1000,
        "max": answered[-1] * 1000,
        "accepted_after": max(accepted),
        "late_p99": sorted(late)[int(0.99 * (len(late) - 1))],
        "lag_p99": sorted(lags)[int(0.99 * (len(lags) - 1))],
        "lag_max": max(lags),
        "health_max": max(seconds for seconds, _ in health) * 1000,
        "health_failed": sum(1 for _, status in health if status != 200),
    }


async def loop_lag(lags: list[float]) -> None:
    """How late the sender's own event loop wakes a 10 ms sleep: time that every attempt's figure includes but
    the service did not spend."""
    while True:
        asked = time.monotonic()
        await asyncio.sleep(0.01)
        lags.append(time.monotonic() - asked - 0.01)


async def health_watch(url: str, health: list[tuple[float, int]]) -> None:
    """GET /healthz four times a second while the webhooks come, on connections of its own."""
    host, port = url.removeprefix("http://").split(":")
    while True:
        started = time.monotonic()
        try:
            async with asyncio.timeout(ATTEMPT_TIMEOUT_SECONDS):
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                status = int((await reader.readline()).split()[1])
                writer.close()
        except (OSError, TimeoutError, IndexError, ValueError):
            status = 0
        health.append((time.monotonic() - started, status))
        await asyncio.sleep(0.25)


def settle(stack, receiver: ReceiverProcess, before: dict) -> dict:
    """After a run: every group answered and every reply delivered; then the checks (the receiver's counts since
    `before`), and a clean slate for the next run (its messages and replies removed)."""
    from tests.helpers import wait_until

    wait_until(stack.nothing_pending, timeout=300, interval=1, what="every group answered")
    wait_until(
        lambda: stack.sql("SELECT count(*) FROM delivery_replydelivery WHERE state <> 'delivered'")[0][0] == 0,
        timeout=300,
        interval=1,
        what="every reply delivered",
    )
    [(inbound, unanswered, outbound)] = stack.sql(
        """SELECT count(*) FILTER (WHERE type = 'INBOUND'),
                  count(*) FILTER (WHERE type = 'INBOUND' AND reply_id IS NULL),
                  count(*) FILTER (WHERE type = 'OUTBOUND')
           FROM chat_message"""
    )
    stats = receiver.stats()
    received, repeats = stats["distinct"] - before["distinct"], stats["repeats"] - before["repeats"]
    result = {
        "accepted_once": f"{inbound} stored",
        "answered_once": f"{inbound - unanswered} answered by {outbound} replies",
        "delivered_once": f"{received} of {outbound} received, {repeats} repeats",
    }
    stack.sql("DELETE FROM chat_message")
    return result


if __name__ == "__main__":
    main()
