"""Reply lag benchmark: last inbound arrival -> OUTBOUND written, over many concurrent conversations.

    python bench/reply_lag_bench.py [--conversations 500] [--worker-concurrency 2]

Starts the real stack (gunicorn, Celery worker, beat) with the true windows through bin/entrypoint.sh, opens
the conversations, sends each a burst of 1-3 messages from concurrent clients, waits for every reply and
prints the lag distribution measured on the database clock (reply timestamp - newest answered arrival).
Targets: never under 5.0 s, p50 under 5.8 s, p99 under 6.5 s.
"""

import argparse
import os
import random
import statistics
import sys
import time
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
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.test")
    import django

    django.setup()
    from tests.e2e.stack import Stack, wait_until

    stack = Stack(
        "lag",
        env={
            "GROUP_WINDOW_SECONDS": "5",
            "ORPHAN_TTL_SECONDS": "6",
            "SWEEP_INTERVAL_SECONDS": "1",
            "CELERY_CONCURRENCY": str(args.worker_concurrency),
            "LOG_LEVEL": "INFO",
            "CELERY_LOG_LEVEL": "INFO",
        },
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

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            list(pool.map(send, bursts.items()))
        send_seconds = time.monotonic() - started
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
        rows = stack.sql(
            """SELECT extract(epoch FROM r.timestamp - max(m.received_at)), count(*)
               FROM chat_message r JOIN chat_message m ON m.reply_id = r.id
               WHERE r.type = 'OUTBOUND' GROUP BY r.id, r.timestamp"""
        )
    finally:
        print(stack.workdir)
        stack.stop()

    lags = [float(lag) for lag, _ in rows]
    print(
        f"\nreply lag: {args.conversations} conversations, {total} messages sent in {send_seconds:.1f} s by "
        f"{args.clients} clients; worker concurrency {args.worker_concurrency}; windows 5 s / 6 s; sweep 1 s\n"
    )
    print("| replies | min s | p50 s | p90 s | p99 s | max s | mean s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {len(lags)} | {min(lags):.3f} | {percentile(lags, 0.5):.3f} | {percentile(lags, 0.9):.3f} | "
        f"{percentile(lags, 0.99):.3f} | {max(lags):.3f} | {statistics.mean(lags):.3f} |"
    )


if __name__ == "__main__":
    main()
