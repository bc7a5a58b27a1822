"""Sweep and batch cost benchmark: the time of one sweep and of one reply batch as the message table grows,
with 1,000 open groups.

    python bench/sweep_bench.py [--sizes 10000 1000000] [--groups 1000]

For each size it fills a fresh database with answered history plus `groups` conversations whose pending
group is still inside its window, then times sweeps (steady state: nothing due) and counts their statements,
makes every group due and times one sweep (it only asks for a wake-up; the enqueue is a no-op here) and the reply
batches that answer them, and prints the plan of the batch's locking query, which must read only the partial
index of pending messages.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "realmate_sweepbench"
DB_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"


def admin_sql(*statements: str) -> None:
    connection = psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.close()


def setup_database() -> None:
    admin_sql(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)', f'CREATE DATABASE "{DB_NAME}"')
    env = {**os.environ, "DATABASE_URL": DB_URL, "DJANGO_SETTINGS_MODULE": "realmate.settings.local"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def fill(cursor, messages: int, groups: int) -> None:
    history_conversations = max(1, messages // 10)
    cursor.execute("TRUNCATE chat_message, chat_conversation, chat_parkedmessage CASCADE")
    cursor.execute(
        """INSERT INTO chat_conversation (id, status, created_at, updated_at, closed_at)
           SELECT md5('h' || n)::uuid, 'CLOSED', now() - interval '1 day', now() - interval '1 day',
                  now() - interval '1 day'
           FROM generate_series(1, %s) AS n""",
        [history_conversations],
    )
    cursor.execute(
        """INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending)
           SELECT md5('m' || n)::uuid, md5('h' || (n %% %s + 1))::uuid, 'INBOUND', 'histórico', now(),
                  now() - interval '1 day', false
           FROM generate_series(1, %s) AS n""",
        [history_conversations, messages],
    )
    cursor.execute(
        """INSERT INTO chat_conversation (id, status, created_at, updated_at)
           SELECT md5('g' || n)::uuid, 'OPEN', now(), now() FROM generate_series(1, %s) AS n""",
        [groups],
    )
    # Two pending messages per open group, arrived just now: inside the window, not due yet.
    cursor.execute(
        """INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending)
           SELECT md5('p' || n || k)::uuid, md5('g' || n)::uuid, 'INBOUND', 'oi', now(), clock_timestamp(), true
           FROM generate_series(1, %s) AS n, generate_series(1, 2) AS k""",
        [groups],
    )
    cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    setup_database()
    os.environ.update(DATABASE_URL=DB_URL, DJANGO_SETTINGS_MODULE="realmate.settings.local", LOG_LEVEL="WARNING")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from scheduler.grouping import group_rules
    from scheduler.queries import CANDIDATES_LOCK_SQL
    from scheduler.replies import replies_write_batch
    from scheduler.services import sweep_run

    rules = group_rules()
    claim_params = {
        "candidate_age": rules.candidate_age,
        "max_messages": rules.max_messages,
        "closed": "CLOSED",
        "after": None,
        "limit": 500,
    }

    def sweep():
        return sweep_run(wake=lambda countdown, woken_for=None: None)

    rows, plans = [], {}
    for size in args.sizes:
        with connection.cursor() as cursor:
            fill(cursor, size, args.groups)
        sweep()  # warm-up
        idle = []
        for _ in range(args.runs):
            started = time.perf_counter()
            sweep()
            idle.append((time.perf_counter() - started) * 1000)
        with CaptureQueriesContext(connection) as statements:
            sweep()
        with connection.cursor() as cursor:
            cursor.execute("UPDATE chat_message SET received_at = received_at - interval '10 seconds' WHERE pending")
            cursor.execute("ANALYZE chat_message")
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + CANDIDATES_LOCK_SQL, claim_params)
            plans[size] = [line for (line,) in cursor.fetchall()]
        started = time.perf_counter()
        sweep()
        due_ms = (time.perf_counter() - started) * 1000
        batches = []
        while True:
            result = replies_write_batch(limit=500)
            if not result.replies:
                break
            batches.append((result.duration * 1000, result.replies))
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_relation_size('message_pending_idx'))")
            index_size = cursor.fetchone()[0]
        rows.append((size, statistics.median(idle), max(idle), len(statements), due_ms, batches, index_size))

    print(f"\nsweep benchmark: {args.groups} open groups (2 pending messages each), {args.runs} idle sweeps per size\n")
    print(
        "| stored messages | idle sweep p50 ms | idle max ms | idle statements | sweep, all due ms "
        "| batches of 500: ms each | pending index |"
    )
    print("|---:|---:|---:|---:|---:|---|---:|")
    for size, p50, worst, statements, due_ms, batches, index_size in rows:
        each = ", ".join(f"{ms:.0f} ({replies})" for ms, replies in batches)
        print(f"| {size:,} | {p50:.1f} | {worst:.1f} | {statements} | {due_ms:.1f} | {each} | {index_size} |")
    for size, plan in plans.items():
        print(f"\nplan of the batch's locking query (every group due) with {size:,} stored messages:")
        print("\n".join("    " + line for line in plan))


if __name__ == "__main__":
    main()
