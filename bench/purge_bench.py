"""Retention under load: the purge of old conversations while live traffic runs, on the real stack at the true
windows (5 s / 6 s, sweep 1 s).

    python bench/purge_bench.py [--old-conversations 50000] [--messages-each 10] [--rate 20] [--seconds 20]

Seeds `old-conversations` conversations idle for 40 days with `messages-each` messages each (500,000 messages by
default), then sends live traffic (`rate` new conversations a second, each with a burst of 1-3 messages 1 s apart)
for `seconds` at rest, and again while `manage.py purge_conversations --days 30` erases the old ones (the live
phase lasts as long as the purge, `seconds` at least). Prints the purge's rows/s, and for each phase the webhook's
p50/p99 (client side) and the live conversations' reply lag p50/p99 (database clock).
"""

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.shutdown import sigterm_exits  # noqa: E402 (after the path is set)

STAMP = "2025-06-04T14:20:00Z"


def live_events(rate: float, seconds: float, rng: random.Random) -> tuple[list, list[uuid.UUID]]:
    events, conversations = [], []
    for index in range(int(rate * seconds)):
        conversation_id, start = uuid.uuid4(), index / rate
        conversations.append(conversation_id)
        events.append((start, {"type": "NEW_CONVERSATION", "timestamp": STAMP, "data": {"id": str(conversation_id)}}))
        for offset in range(rng.randint(1, 3)):
            data = {"id": str(uuid.uuid4()), "content": "oi", "conversation_id": str(conversation_id)}
            events.append((start + 0.05 + offset, {"type": "NEW_MESSAGE", "timestamp": STAMP, "data": data}))
    events.sort(key=lambda item: item[0])
    return events, conversations


def phase(stack, events: list, conversations: list[uuid.UUID]) -> dict:
    """Send `events` on schedule and wait until nothing waits: the webhook's latencies (every request) and the
    reply lag of `conversations`."""
    from bench.capacity_bench import send_on_schedule
    from bench.reply_lag_bench import reply_lags
    from tests.helpers import wait_until

    latencies: list[float] = []
    _, failures = send_on_schedule(stack.base_url, events, latencies)
    wait_until(stack.nothing_pending, timeout=120, interval=0.5, what="every live group answered")
    lags, latencies = sorted(reply_lags(stack, conversations)), sorted(latencies)
    return {
        "requests": len(latencies),
        "failures": failures,
        "replies": len(lags),
        "p50": 1000 * statistics.median(latencies),
        "p99": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "lag50": statistics.median(lags),
        "lag99": lags[int(0.99 * (len(lags) - 1))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-conversations", type=int, default=50_000)
    parser.add_argument("--messages-each", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    sigterm_exits()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realmate.settings.test")
    import django

    django.setup()
    from tests.e2e.stack import Stack

    env = {"GROUP_WINDOW_SECONDS": "5", "ORPHAN_TTL_SECONDS": "6", "SWEEP_INTERVAL_SECONDS": "1"}
    stack = Stack("purge", env=env)
    stack.start()
    try:
        stack.sql(
            f"""WITH c AS (
                    INSERT INTO chat_conversation (id, status, created_at, updated_at, closed_at)
                    SELECT gen_random_uuid(), 'CLOSED', t, t, t
                    FROM generate_series(1, {args.old_conversations}) AS n,
                         LATERAL (SELECT now() - interval '40 days' - n * interval '1 second') AS at (t)
                    RETURNING id, created_at)
                INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending)
                SELECT gen_random_uuid(), c.id, 'INBOUND', 'histórico', c.created_at, c.created_at, false
                FROM c CROSS JOIN generate_series(1, {args.messages_each})"""
        )
        stack.sql("VACUUM ANALYZE")
        rng = random.Random(5)
        rest = phase(stack, *live_events(args.rate, args.seconds, rng))

        purge = {}

        def run_purge() -> None:
            started = time.monotonic()
            out = subprocess.run(
                [str(stack.python), "manage.py", "purge_conversations", "--days", "30"],
                cwd=stack.root,
                env=stack.env(),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            purge["seconds"] = time.monotonic() - started
            purge["out"] = out.strip().splitlines()[-1]

        purger = threading.Thread(target=run_purge)
        purger.start()
        during = phase(stack, *live_events(args.rate, args.seconds, rng))
        purger.join()
    finally:
        stack.stop()

    [(conversations, messages)] = re.findall(r"erased (\d+) conversations, (\d+) messages", purge["out"])
    conversations, messages = int(conversations), int(messages)
    print(
        f"\npurge under load: {conversations:,} conversations and {messages:,} messages erased in "
        f"{purge['seconds']:.1f} s ({messages / purge['seconds']:,.0f} messages/s, "
        f"{conversations / purge['seconds']:,.0f} conversations/s, 200 per transaction); live traffic "
        f"{args.rate:g} conversations/s with bursts of 1-3 messages, true windows\n"
    )
    print("| phase | webhooks | failed | webhook p50 ms | p99 ms | reply lag p50 s | p99 s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, r in (("at rest", rest), ("during the purge", during)):
        print(
            f"| {label} | {r['requests']} | {r['failures']} | {r['p50']:.1f} | {r['p99']:.1f} | "
            f"{r['lag50']:.3f} | {r['lag99']:.3f} |"
        )


if __name__ == "__main__":
    main()
