"""Sweep cost benchmark: the time of one sweep as the message table grows, with 1,000 open groups.

    python bench/sweep_bench.py [--sizes 10000 1000000] [--groups 1000]

For each size it fills a fresh database with answered history plus `groups` conversations whose pending
group is still inside its window, then times sweeps (steady state: nothing due), one sweep that finds every
group due (leases 1,000 conversations; the enqueue itself is replaced by a no-op to time the database
work), and prints the plan of the due-groups query, which must read only the partial index.
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
    cursor.execute("TRUNCATE chat_message, chat_conversation, chat_pendingmessage CASCADE")
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

    from chat.models import Conversation
    from chat.queries import DUE_GROUPS_SQL
    from scheduler.services import dispatch_lookahead, group_rules, sweep_run

    rules = group_rules()
    due_groups_params = {
        "window": rules.window,
        "max_wait": rules.max_wait,
        "max_messages": rules.max_messages,
        "lookahead": dispatch_lookahead(),
        "closed": Conversation.Status.CLOSED,
    }

    rows, plans = [], {}
    for size in args.sizes:
        with connection.cursor() as cursor:
            fill(cursor, size, args.groups)
        sweep_run(dispatch=lambda group: None, dispatch_delivery=lambda job: None)  # warm-up
        idle = []
        for _ in range(args.runs):
            started = time.perf_counter()
            sweep_run(dispatch=lambda group: None, dispatch_delivery=lambda job: None)
            idle.append((time.perf_counter() - started) * 1000)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE chat_message SET received_at = received_at - interval '10 seconds' WHERE pending")
            cursor.execute("ANALYZE chat_message")
        dispatched = []
        started = time.perf_counter()
        sweep_run(dispatch=dispatched.append, dispatch_delivery=lambda job: None)
        due_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        sweep_run(dispatch=dispatched.append, dispatch_delivery=lambda job: None)
        leased_ms = (time.perf_counter() - started) * 1000
        with connection.cursor() as cursor:
            cursor.execute("UPDATE chat_message SET received_at = clock_timestamp() WHERE pending")
            cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + DUE_GROUPS_SQL, due_groups_params)
            plans[size] = [line for (line,) in cursor.fetchall()]
            cursor.execute("SELECT pg_size_pretty(pg_relation_size('message_pending_idx'))")
            index_size = cursor.fetchone()[0]
        rows.append((size, statistics.median(idle), max(idle), due_ms, len(dispatched), leased_ms, index_size))

    print(f"\nsweep benchmark: {args.groups} open groups (2 pending messages each), {args.runs} idle sweeps per size\n")
    print(
        "| stored messages | idle sweep p50 ms | idle max ms | sweep, all due ms | dispatched | next sweep ms | "
        "pending index |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size, p50, worst, due_ms, count, leased_ms, index_size in rows:
        print(f"| {size:,} | {p50:.1f} | {worst:.1f} | {due_ms:.1f} | {count} | {leased_ms:.1f} | {index_size} |")
    for size, plan in plans.items():
        print(f"\nplan of the due-groups query (idle) with {size:,} stored messages:")
        print("\n".join("    " + line for line in plan))


if __name__ == "__main__":
    main()
