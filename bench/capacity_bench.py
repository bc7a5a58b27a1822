"""Capacity benchmark: the figures behind the scaling guide in docs/operations.md.

    python bench/capacity_bench.py [--part webhook|workers|drain-webhook|soak|all] [--conversations 10000]
                                   [--soak-seconds 120] [--against GIT_REF] [--batch-sizes 250,1000]

webhook        gunicorn with 1 and then 2 sync workers (alternating at each step), wrk posting NEW_MESSAGE at rising
               concurrency (1 ... 128 connections) until p99 passes 250 ms, the latency Meta-compatible providers
               ask of a webhook receiver; prints each step, and the highest rate under 250 ms per web process.
workers        10,000 conversations, each with a group of 2 messages due at once; a Celery worker with 1 and then 2
               processes (and beat) answers them; prints replies written per second (first to last reply, database
               clock) and the ratio to the reference: the same replies written by set-based SQL alone, run before
               and after the workers. With --against, GIT_REF's code (exported with a virtualenv of its own) runs
               each step too, alternating; --batch-sizes adds 2-process steps at other REPLY_BATCH_SIZE values.
drain-webhook  wrk posting NEW_MESSAGE to the conversations of such a backlog, at rest and while a worker of 2
               processes drains it: what a batch's locks cost a sender.
soak           the real stack at the true windows (5 s / 6 s, sweep 1 s, worker concurrency 4): 10,000
               conversations opened evenly over 120 s, each with a burst of 1-3 messages 1 s apart; prints the
               reply lag (p50/p99/max: newest answered arrival -> reply written, database clock) and checks every
               burst got exactly one reply.

Everything runs on this one machine (wrk, the senders and the service share its cores): read the figures as
ratios between rows of one run, not as what a bigger machine would do. Needs `wrk` (apt-get install wrk), a local
PostgreSQL and redis-server.
"""

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.shutdown import sigterm_exits  # noqa: E402 (after the path is set)

P99_LIMIT_MS = 250
STAMP = "2025-06-04T14:20:00Z"


def comma_separated_ints(text: str) -> list[int]:
    """An option's value such as `250,1000`."""
    return [int(part) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["webhook", "workers", "drain-webhook", "soak", "all"], default="all")
    parser.add_argument("--drain-connections", type=int, default=8, help="drain-webhook part: wrk connections")
    parser.add_argument("--conversations", type=int, default=10000)
    parser.add_argument("--soak-seconds", type=float, default=120)
    parser.add_argument("--step-seconds", type=int, default=4, help="wrk duration of each webhook step")
    parser.add_argument("--against", metavar="GIT_REF", help="workers part: also run this commit's code")
    parser.add_argument(
        "--batch-sizes",
        type=comma_separated_ints,
        default=[],
        help="workers part: also drain with 2 processes at each of these REPLY_BATCH_SIZE values (e.g. 100,250,1000)",
    )
    args = parser.parse_args()
    sigterm_exits()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.test")
    import django

    django.setup()
    if args.part in ("webhook", "all"):
        webhook_capacity(args)
    if args.part in ("workers", "all"):
        worker_capacity(args)
    if args.part in ("drain-webhook", "all"):
        webhook_during_drain(args)
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


# --- (b) replies written per second by 1 and 2 worker processes, against PostgreSQL doing the same work alone
# The limit: the same replies written by set-based SQL on the same seeded data, one statement per batch of 500 (an
# INSERT ... SELECT ... string_agg ... GROUP BY, and the UPDATE of the answered messages, as one statement).
REFERENCE_BATCH_SQL = """
WITH batch AS (
    SELECT conversation_id FROM chat_message WHERE pending
    GROUP BY conversation_id ORDER BY min(received_at) LIMIT 500
), replies AS (
    INSERT INTO chat_message (id, conversation_id, type, author, content, timestamp, received_at, pending,
                              send_reason)
    SELECT gen_random_uuid(), m.conversation_id, 'OUTBOUND', 'bot',
           E'Mensagens recebidas:\\n' || string_agg(m.id::text || E'\\n', '' ORDER BY m.timestamp, m.received_at, m.id),
           clock_timestamp(), clock_timestamp(), false, 'quiet'
    FROM chat_message m JOIN batch USING (conversation_id)
    WHERE m.pending
    GROUP BY m.conversation_id
    RETURNING id, conversation_id
)
UPDATE chat_message m SET pending = false, reply_id = replies.id
FROM replies WHERE m.conversation_id = replies.conversation_id AND m.pending
"""


def worker_capacity(args: argparse.Namespace) -> None:
    from bench.webhook_bench import Tree

    trees = [("this checkout", ROOT, Path(sys.executable))]
    if args.against:
        other = Tree.from_git(args.against, port=0)
        trees.append((other.label, other.root, other.python))
    print(
        f"\n(b) workers: {args.conversations} conversations, each with a group of 2 messages due, answered by a worker"
        " of 1 and 2 processes; the reference is set-based SQL in batches of 500 on the same data, run before and"
        " after the workers\n"
    )
    references = [reference_drain(args.conversations)]
    runs = []
    for step, processes in enumerate((1, 2)):
        for label, root, python in trees if step % 2 == 0 else trees[::-1]:
            runs.append((label, processes, drain(args.conversations, processes, root, python)))
            print(f"  {label}, {processes} processes: done", file=sys.stderr, flush=True)
    for size in args.batch_sizes:
        runs.append(("this checkout", 2, drain(args.conversations, 2, ROOT, Path(sys.executable), batch_size=size)))
        print(f"  batch size {size}: done", file=sys.stderr, flush=True)
    references.append(reference_drain(args.conversations))
    # Ratios to the mean of the two reference runs, one before and one after the workers.
    reference = statistics.mean(result["replies"] / result["seconds"] for result in references)
    print("| code | processes | batch size | replies | seconds | replies/s | vs reference | batch ms p50 / max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for result in references:
        print(reference_row(result))
    for label, processes, result in runs:
        print(drain_row(label, processes, result, reference))


def reference_row(result: dict) -> str:
    rate = result["replies"] / result["seconds"]
    seconds = f"{result['seconds']:.2f}"
    cells = ["set-based SQL (reference)", "-", 500, result["replies"], seconds, f"{rate:.0f}", "-", "-"]
    return "| " + " | ".join(map(str, cells)) + " |"


def drain_row(label: str, processes: int, result: dict, reference: float) -> str:
    rate = result["replies"] / result["seconds"]
    ratio = rate / reference
    batches = result["batch_ms"]
    timing = f"{statistics.median(batches):.0f} / {max(batches):.0f}" if batches else "-"
    return (
        f"| {label} | {processes} | {result['batch_size'] or '-'} | {result['replies']} | {result['seconds']:.2f} | "
        f"{rate:.0f} | {ratio:.3f} | {timing} |"
    )


def backlog_seed(stack, groups: int, prefix: str = "") -> None:
    """`groups` conversations (ids numbered after `prefix` when given, as bench/webhook.lua names them), each with
    a group of two messages that arrived 5-6 s ago: all due at once, the way a burst of traffic leaves them."""
    conversation_id = f"('{prefix}-0000-4000-8000-' || lpad(n::text, 12, '0'))::uuid" if prefix else "gen_random_uuid()"
    stack.sql(
        f"""WITH c AS (
                INSERT INTO chat_conversation (id, status, created_at, updated_at)
                SELECT {conversation_id}, 'OPEN', now(), now() FROM generate_series(0, {groups - 1}) AS n
                RETURNING id),
            first AS (
                SELECT c.id, clock_timestamp() - interval '5 seconds' - random() * interval '1 second' AS arrival
                FROM c)
            INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending)
            SELECT gen_random_uuid(), first.id, 'INBOUND', 'oi', now(), first.arrival - k * interval '1 second', true
            FROM first CROSS JOIN generate_series(0, 1) AS k"""
    )
    # Each conversation's moment, as the webhook would have set it (first arrival plus the window): come already.
    # A tree from before that column (--against) finds its candidates from the messages themselves.
    has_moment = "SELECT 1 FROM information_schema.columns WHERE column_name = 'reply_due_at'"
    if stack.sql(has_moment):
        stack.sql(
            """UPDATE chat_conversation c SET reply_due_at = w.first + interval '5 seconds'
               FROM (SELECT conversation_id, min(received_at) AS first FROM chat_message WHERE pending GROUP BY 1) w
               WHERE c.id = w.conversation_id"""
        )
    stack.sql("VACUUM ANALYZE")


def reference_drain(groups: int) -> dict:
    """The same backlog answered by REFERENCE_BATCH_SQL alone, batch after batch, one transaction each."""
    from tests.e2e.stack import Stack

    stack = Stack("reference", workers=0, beats=0)
    stack.start()
    try:
        backlog_seed(stack, groups)
        with stack.connect() as connection:
            connection.autocommit = True
            started = time.perf_counter()
            while connection.execute(REFERENCE_BATCH_SQL).rowcount:
                pass
            seconds = time.perf_counter() - started
        [(replies,)] = stack.sql("SELECT count(*) FROM chat_message WHERE type = 'OUTBOUND'")
    finally:
        stack.stop()
    return {"replies": replies, "seconds": seconds}


def drain(groups: int, processes: int, root: Path, python: Path, batch_size: int | None = None) -> dict:
    """`groups` due groups answered by a worker of `processes` processes (the code at `root`): the replies written,
    the seconds from the first to the last (database clock), and each batch's duration from the worker's log."""
    from tests.e2e.stack import Stack
    from tests.helpers import wait_until

    env = {"CELERY_CONCURRENCY": str(processes), "LOG_LEVEL": "INFO"}
    if batch_size:
        env["REPLY_BATCH_SIZE"] = str(batch_size)
    stack = Stack("capacity", env=env, workers=0, beats=0, root=root, python=python)
    stack.start()
    try:
        backlog_seed(stack, groups)
        stack.start_role("worker", "worker0")
        stack.start_role("beat", "beat0")
        wait_until(stack.nothing_pending, timeout=1200, interval=1, what="every group answered")
        [(replies, seconds)] = stack.sql(
            """SELECT count(*), extract(epoch FROM max(timestamp) - min(timestamp))
               FROM chat_message WHERE type = 'OUTBOUND'"""
        )
        batch_ms = [
            record["duration_ms"]
            for record in log_records(stack.log("worker0"))
            if record.get("message") == "reply batch" and record.get("replies")
        ]
    finally:
        stack.stop()
    return {"replies": replies, "seconds": float(seconds), "batch_ms": batch_ms, "batch_size": batch_size or 500}


def log_records(text: str) -> list[dict]:
    """The JSON lines of a process's log."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


# --- (d) the webhook while a backlog drains
def webhook_during_drain(args: argparse.Namespace) -> None:
    """NEW_MESSAGE posted by wrk to the conversations of a backlog of due groups: at rest (no worker), then while
    a worker of 2 processes drains it. A batch locks its conversations until it commits, so a message to one of them
    waits for that commit: the difference between the two rows is what the batches' locks (and their CPU) cost."""
    from bench.webhook_bench import run_wrk
    from tests.e2e.stack import Stack
    from tests.helpers import wait_until

    stack = Stack("drainweb", env={"CELERY_CONCURRENCY": "2", "LOG_LEVEL": "WARNING"}, workers=0, beats=0)
    stack.start()
    rows = []
    try:
        backlog_seed(stack, args.conversations, prefix="aaaaaaaa")
        url = f"{stack.base_url}/webhook/"
        env = {"MESSAGE_POOL": str(args.conversations)}
        rows.append(("at rest", run_wrk(url, "NEW_MESSAGE", args.step_seconds, args.drain_connections, 2, env), ""))
        stack.start_role("worker", "worker0")
        stack.start_role("beat", "beat0")
        wait_until(
            lambda: stack.sql("SELECT count(*) FROM chat_message WHERE type = 'OUTBOUND'")[0][0] > 0,
            timeout=30,
            interval=0.02,
            what="the drain under way",
        )
        during = run_wrk(url, "NEW_MESSAGE", args.step_seconds, args.drain_connections, 2, env)
        [(replies,)] = stack.sql("SELECT count(*) FROM chat_message WHERE type = 'OUTBOUND'")
        rows.append(("during the drain", during, f"{replies} of {args.conversations} answered when wrk ended"))
        wait_until(stack.nothing_pending, timeout=600, interval=0.5, what="the backlog drained")
    finally:
        stack.stop()
    print(
        f"\n(d) webhook during a drain: NEW_MESSAGE to the {args.conversations} conversations of a backlog of due"
        " groups,"
        f" wrk {args.step_seconds} s at {args.drain_connections} connections; worker of 2 processes, batches of 500\n"
    )
    print("| when | requests/s | p50 ms | p99 ms | non-2xx | note |")
    print("|---|---:|---:|---:|---:|---|")
    for label, r, note in rows:
        print(f"| {label} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['non_2xx']} | {note} |")


# --- (c) a soak at the true windows
def soak(args: argparse.Namespace) -> None:
    from bench.reply_lag_bench import reply_lags
    from tests.e2e.stack import Stack
    from tests.helpers import wait_until

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
        wait_until(stack.nothing_pending, timeout=300, interval=1, what="every burst answered")
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


def send_on_schedule(
    base_url: str, events: list[tuple[float, dict]], latencies: list[float] | None = None
) -> tuple[float, int]:
    """Send each event at its time from a pool of threads; returns (p99 lateness in seconds, failed requests), and
    adds each request's latency in seconds to `latencies` when given."""
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
                sent = time.monotonic()
                response = local.session.post(f"{base_url}/webhook/", json=payload, timeout=30)
                if latencies is not None:
                    latencies.append(time.monotonic() - sent)
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
