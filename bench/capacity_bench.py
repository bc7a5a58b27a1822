"""Capacity benchmark: the figures behind the scaling guide in docs/operations.md.

    python bench/capacity_bench.py [--part webhook|workers|soak|all] [--conversations 10000] [--soak-seconds 120]
                                   [--against GIT_REF]

webhook  gunicorn with 1 and then 2 sync workers (alternating at each step), wrk posting NEW_MESSAGE at rising
         concurrency (1 ... 128 connections) until p99 passes 250 ms, the latency Meta-compatible providers
         ask of a webhook receiver; prints each step, and the highest rate under 250 ms per web process.
workers  10,000 groups (one message each) fall due within one second; a Celery worker with 1, 2 and 4 processes
         (and beat) answers them; prints replies written per second (first to last reply, database clock).
         With --against, GIT_REF's code (exported with a virtualenv of its own) runs each step too, alternating.
soak     the real stack at the true windows (5 s / 6 s, sweep 1 s, worker concurrency 4): 10,000 conversations
         opened evenly over 120 s, each with a burst of 1-3 messages 1 s apart; prints the reply lag
         (p50/p99/max: newest answered arrival -> reply written, database clock) and checks every burst got
         exactly one reply.

Everything runs on this one machine (wrk, the senders and the service share its cores): read the figures as
ratios between rows of one run (1 against 2 web processes, 1 against 2 and 4 worker processes), not as what a
bigger machine would do. Needs `wrk` (apt-get install wrk), a local PostgreSQL and redis-server.
"""

import argparse
import os
import random
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.shutdown import sigterm_exits  # noqa: E402 (after the path is set)

P99_LIMIT_MS = 250
STAMP = "2025-06-04T14:20:00Z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["webhook", "workers", "soak", "all"], default="all")
    parser.add_argument("--conversations", type=int, default=10000)
    parser.add_argument("--soak-seconds", type=float, default=120)
    parser.add_argument("--step-seconds", type=int, default=4, help="wrk duration of each webhook step")
    parser.add_argument("--against", metavar="GIT_REF", help="workers part: also run this commit's code")
    args = parser.parse_args()
    sigterm_exits()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.test")
    import django

    django.setup()
    if args.part in ("webhook", "all"):
        webhook_capacity(args)
    if args.part in ("workers", "all"):
        worker_capacity(args)
    if args.part in ("soak", "all"):
        soak(args)


# --- (a) webhook requests per web process
def webhook_capacity(args: argparse.Namespace) -> None:
    from bench.webhook_bench import Tree, run_wrk, seed

    pool = 1000
    trees = {
        processes: Tree(f"{processes} web", ROOT, Path(sys.executable), 8770 + processes, f"realmate_cap_{processes}")
        for processes in (1, 2)
    }
    results: dict[int, list[tuple[int, dict]]] = {processes: [] for processes in trees}
    try:
        for processes, tree in trees.items():
            tree.start(processes, "INFO")
            seed(tree.database, 2, 1, pool)
        env = {"MESSAGE_POOL": str(pool)}
        over = set()
        for connections in (1, 2, 4, 8, 16, 32, 64, 128):
            for processes, tree in trees.items() if connections % 2 else reversed(trees.items()):
                if processes in over:
                    continue
                url = f"http://127.0.0.1:{tree.port}/webhook/"
                result = run_wrk(url, "NEW_MESSAGE", args.step_seconds, connections, min(2, connections), env)
                results[processes].append((connections, result))
                if result["p99"] > P99_LIMIT_MS:
                    over.add(processes)
            if len(over) == len(trees):
                break
    finally:
        for tree in trees.values():
            tree.stop()

    print(f"\n(a) webhook: NEW_MESSAGE, wrk {args.step_seconds} s per step, gunicorn sync workers, LOG_LEVEL=INFO\n")
    print("| web processes | connections | requests/s | p50 ms | p99 ms | non-2xx |")
    print("|---:|---:|---:|---:|---:|---:|")
    for processes, steps in results.items():
        for connections, r in steps:
            print(
                f"| {processes} | {connections} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['non_2xx']} |"
            )
    print(f"\n| web processes | highest requests/s with p99 <= {P99_LIMIT_MS} ms | per web process |")
    print("|---:|---:|---:|")
    for processes, steps in results.items():
        best = max((r["rps"] for _, r in steps if r["p99"] <= P99_LIMIT_MS), default=0.0)
        print(f"| {processes} | {best:.0f} | {best / processes:.0f} |")


# --- (b) replies written per second by 1, 2, 4 worker processes
def worker_capacity(args: argparse.Namespace) -> None:
    from bench.webhook_bench import Tree

    trees = [("this checkout", ROOT, Path(sys.executable))]
    if args.against:
        other = Tree.from_git(args.against, port=0)
        trees.append((other.label, other.root, other.python))
    print(f"\n(b) workers: {args.conversations} groups of one message, all due within one second\n")
    print("| code | worker processes | replies | seconds, first to last reply | replies/s | vs 1 process |")
    print("|---|---:|---:|---:|---:|---:|")
    base = {}
    for step, processes in enumerate((1, 2, 4)):
        for label, root, python in trees if step % 2 == 0 else trees[::-1]:
            replies, seconds = drain(args.conversations, processes, root, python)
            rate = replies / seconds
            base.setdefault(label, rate)
            cells = [label, processes, replies, f"{seconds:.1f}", f"{rate:.0f}", f"{rate / base[label]:.2f}x"]
            print("| " + " | ".join(map(str, cells)) + " |", flush=True)


def drain(groups: int, processes: int, root: Path, python: Path) -> tuple[int, float]:
    """`groups` due groups answered by a worker of `processes` processes (the code at `root`): the replies
    written, and the seconds from the first to the last."""
    from tests.e2e.stack import Stack, wait_until

    env = {"CELERY_CONCURRENCY": str(processes), "LOG_LEVEL": "WARNING"}
    stack = Stack("capacity", env=env, workers=0, beats=0, root=root, python=python)
    stack.start()
    try:
        # Arrivals 5-6 s ago: every group is due at once, the way a burst of traffic leaves them.
        stack.sql(
            f"""WITH c AS (
                    INSERT INTO chat_conversation (id, status, created_at, updated_at)
                    SELECT gen_random_uuid(), 'OPEN', now(), now() FROM generate_series(1, {groups})
                    RETURNING id)
                INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending)
                SELECT gen_random_uuid(), c.id, 'INBOUND', 'oi', now(),
                       clock_timestamp() - interval '5 seconds' - random() * interval '1 second', true
                FROM c"""
        )
        stack.sql("ANALYZE")
        stack.start_role("worker", "worker0")
        stack.start_role("beat", "beat0")
        wait_until(partial(nothing_pending, stack), timeout=1200, interval=1, what="every group answered")
        [(replies, seconds)] = stack.sql(
            """SELECT count(*), extract(epoch FROM max(timestamp) - min(timestamp))
               FROM chat_message WHERE type = 'OUTBOUND'"""
        )
    finally:
        stack.stop()
    return replies, float(seconds)


# --- (c) a soak at the true windows
def soak(args: argparse.Namespace) -> None:
    from bench.reply_lag_bench import reply_lags
    from tests.e2e.stack import Stack, wait_until

    rng = random.Random(7)
    bursts = {uuid.uuid4(): [uuid.uuid4() for _ in range(rng.randint(1, 3))] for _ in range(args.conversations)}
    spacing = args.soak_seconds / args.conversations
    events = []  # (send at, payload): each conversation opens on schedule, its messages 1 s apart
    for index, (conversation_id, message_ids) in enumerate(bursts.items()):
        start = index * spacing
        events.append((start, {"type": "NEW_CONVERSATION", "timestamp": STAMP, "data": {"id": str(conversation_id)}}))
        for offset, message_id in enumerate(message_ids):
            data = {"id": str(message_id), "content": "oi", "conversation_id": str(conversation_id)}
            events.append((start + 0.05 + offset, {"type": "NEW_MESSAGE", "timestamp": STAMP, "data": data}))
    events.sort(key=lambda event: event[0])

    stack = Stack(
        "soak",
        env={
            "GROUP_WINDOW_SECONDS": "5",
            "ORPHAN_TTL_SECONDS": "6",
            "SWEEP_INTERVAL_SECONDS": "1",
            "CELERY_CONCURRENCY": "4",
            "LOG_LEVEL": "WARNING",
        },
    )
    stack.start()
    try:
        late, failures = send_on_schedule(stack.base_url, events)
        total = sum(len(ids) for ids in bursts.values())
        wait_until(partial(nothing_pending, stack), timeout=300, interval=1, what="every burst answered")
        [(inbound, outbound, answered_once)] = stack.sql(
            """SELECT (SELECT count(*) FROM chat_message WHERE type = 'INBOUND'),
                      (SELECT count(*) FROM chat_message WHERE type = 'OUTBOUND'),
                      (SELECT count(*) FROM (SELECT conversation_id FROM chat_message WHERE type = 'OUTBOUND'
                                            GROUP BY conversation_id HAVING count(*) = 1) AS once)"""
        )
        lags = reply_lags(stack)
    finally:
        stack.stop()

    ordered = sorted(lags)
    print(
        f"\n(c) soak: {args.conversations} conversations over {args.soak_seconds:g} s "
        f"({len(events) / args.soak_seconds:.0f} webhooks/s), bursts of 1-3 messages 1 s apart, true windows\n"
    )
    print("| messages sent | accepted | replies | conversations with one reply | lag p50 s | p99 s | max s | min s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {total} | {inbound} | {outbound} | {answered_once} of {len(bursts)} | "
        f"{statistics.median(ordered):.3f} | {ordered[int(0.99 * (len(ordered) - 1))]:.3f} | {ordered[-1]:.3f} | "
        f"{ordered[0]:.3f} |"
    )
    print(f"\nsenders: {failures} requests failed; p99 of how late a request left its schedule: {late:.3f} s")


def nothing_pending(stack) -> bool:
    """No message waits for a reply or for its conversation."""
    return stack.sql(
        """SELECT (SELECT count(*) FROM chat_message WHERE pending)
                  + (SELECT count(*) FROM chat_pendingmessage WHERE state = 'PARKED')"""
    ) == [(0,)]


def send_on_schedule(base_url: str, events: list[tuple[float, dict]]) -> tuple[float, int]:
    """Send each event at its time from a pool of threads; returns (p99 lateness in seconds, failed requests)."""
    started = time.monotonic()
    cursor = iter(events)
    lock = threading.Lock()
    lateness: list[float] = []
    failures = [0]
    local = threading.local()

    def run() -> None:
        local.session = requests.Session()
        while True:
            with lock:
                event = next(cursor, None)
            if event is None:
                return
            at, payload = event
            wait = started + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            lateness.append(max(0.0, time.monotonic() - started - at))
            try:
                response = local.session.post(f"{base_url}/webhook/", json=payload, timeout=30)
                if response.status_code >= 400:
                    failures[0] += 1
            except requests.RequestException:
                failures[0] += 1

    with ThreadPoolExecutor(max_workers=32) as pool:
        for _ in range(32):
            pool.submit(run)
    ordered = sorted(lateness)
    return ordered[int(0.99 * (len(ordered) - 1))], failures[0]


if __name__ == "__main__":
    main()
