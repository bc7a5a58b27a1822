"""Reply lag benchmark: last inbound arrival -> OUTBOUND written, over many concurrent conversations.

    python bench/reply_lag_bench.py [--conversations 500] [--worker-concurrency 4] [--rounds 1] [--against GIT_REF]
                                    [--deliver]

Starts the real stack (gunicorn, Celery worker, beat) with the true windows through bin/entrypoint.sh, opens
the conversations, sends each a burst of 1-3 messages from concurrent clients, waits for every reply and
prints the lag distribution measured on the database clock (reply timestamp - newest answered arrival).
Never under 5.0 s is the rule. With --against, GIT_REF's code (exported from git with a virtualenv of its own, as
webhook_bench.py does) runs the same bursts in alternating rounds, so the two are compared at the same moments.
With --deliver, this checkout runs with reply delivery on (a delivery worker POSTing every reply to a receiver in
this process, tests/receiver.py) and a second table shows the delivery lag: reply written -> delivered_at.
"""

import argparse
import os
import random
import statistics
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--worker-concurrency", type=int, default=4)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--against", metavar="GIT_REF", help="also run this commit's code, rounds alternating")
    parser.add_argument("--deliver", action="store_true", help="this checkout with reply delivery on")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from bench.shutdown import sigterm_exits

    sigterm_exits()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.test")
    import django

    django.setup()
    from bench.webhook_bench import Tree

    label = "this checkout, delivery on" if args.deliver else "this checkout"
    trees = [(label, ROOT, Path(sys.executable))]
    if args.against:
        other = Tree.from_git(args.against, port=0)
        trees.append((other.label, other.root, other.python))
    print(
        f"\nreply lag: {args.conversations} conversations, bursts of 1-3 messages from {args.clients} clients; "
        f"worker concurrency {args.worker_concurrency}; windows 5 s / 6 s; sweep 1 s\n"
    )
    print("| code | round | replies | min s | p50 s | p90 s | p99 s | max s | mean s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    delivery_rows = []
    for round_number in range(args.rounds):
        for label, root, python in trees if round_number % 2 == 0 else trees[::-1]:
            deliver = args.deliver and root == ROOT
            lags, delivery_lags = measure(args, root, python, deliver=deliver)
            print(row(label, round_number, lags), flush=True)
            if deliver:
                delivery_rows.append(row(label, round_number, delivery_lags))
    if delivery_rows:
        print("\ndelivery lag: reply written -> delivered (a 200 from a local receiver)\n")
        print("| code | round | replies | min s | p50 s | p90 s | p99 s | max s | mean s |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(delivery_rows))


def row(label: str, round_number: int, lags: list[float]) -> str:
    return (
        f"| {label} | {round_number + 1} | {len(lags)} | {min(lags):.3f} | {percentile(lags, 0.5):.3f} | "
        f"{percentile(lags, 0.9):.3f} | {percentile(lags, 0.99):.3f} | {max(lags):.3f} | "
        f"{statistics.mean(lags):.3f} |"
    )


def measure(args: argparse.Namespace, root: Path, python: Path, deliver: bool) -> tuple[list[float], list[float]]:
    """One run on a fresh stack of the code at `root`: the lag of every reply, and (`deliver`) of every delivery,
    in seconds."""
    from tests.e2e.stack import Stack
    from tests.helpers import wait_until
    from tests.receiver import Receiver

    receiver = Receiver().start() if deliver else None
    stack = Stack(
        "lag",
        env={
            "GROUP_WINDOW_SECONDS": "5",
            "ORPHAN_TTL_SECONDS": "6",
            "SWEEP_INTERVAL_SECONDS": "1",
            "CELERY_CONCURRENCY": str(args.worker_concurrency),
            "LOG_LEVEL": "INFO",
            **({"REPLY_WEBHOOK_URL": receiver.url} if receiver else {}),
        },
        deliverers=1 if receiver else 0,
        root=root,
        python=python,
    )
    stack.start()
    try:
        rng = random.Random(1)
        bursts = {uuid.uuid4(): [uuid.uuid4() for _ in range(rng.randint(1, 3))] for _ in range(args.conversations)}

        def send(item):
            conversation_id, message_ids = item
            session = requests.Session()
            url = f"{stack.base_url}/webhook/"
            stamp = "2025-06-04T14:20:00Z"
            session.post(
                url, json={"type": "NEW_CONVERSATION", "timestamp": stamp, "data": {"id": str(conversation_id)}}
            )
            for message_id in message_ids:
                data = {"id": str(message_id), "content": "oi", "conversation_id": str(conversation_id)}
                session.post(url, json={"type": "NEW_MESSAGE", "timestamp": stamp, "data": data})

        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            list(pool.map(send, bursts.items()))
        total = sum(len(ids) for ids in bursts.values())
        wait_until(
            lambda: (
                stack.sql("SELECT count(*) FROM chat_message WHERE pending") == [(0,)]
                and stack.sql("SELECT count(*) FROM chat_message WHERE type = 'INBOUND'") == [(total,)]
            ),
            timeout=120,
            interval=0.5,
            what="every reply",
        )
        lags = reply_lags(stack)
        delivery_rows = []
        if receiver:
            wait_until(
                lambda: stack.sql("SELECT count(*) FROM delivery_replydelivery WHERE state <> 'delivered'") == [(0,)],
                timeout=120,
                interval=0.5,
                what="every delivery",
            )
            delivery_rows = stack.sql(
                """SELECT extract(epoch FROM d.delivered_at - r.timestamp)
                   FROM delivery_replydelivery d JOIN chat_message r ON r.id = d.message_id"""
            )
    finally:
        stack.stop()
        if receiver:
            receiver.stop()
    return lags, [float(lag) for (lag,) in delivery_rows]


def reply_lags(stack, conversations: list | None = None) -> list[float]:
    """Each reply's lag in seconds: from the newest arrival it answers to its being written (database clock); only
    the replies of `conversations`, when given."""
    rows = stack.sql(
        """SELECT extract(epoch FROM r.timestamp - max(m.received_at))
           FROM chat_message r JOIN chat_message m ON m.reply_id = r.id
           WHERE r.type = 'OUTBOUND' AND (%s::uuid[] IS NULL OR r.conversation_id = ANY(%s::uuid[]))
           GROUP BY r.id, r.timestamp""",
        (conversations, conversations),
    )
    return [float(lag) for (lag,) in rows]


if __name__ == "__main__":
    main()
