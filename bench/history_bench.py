"""Cost against history: the hot paths on a database holding months of traffic beside an empty one, measured in
the same run, alternating between the two (A/B), so the machine's drift falls on both.

    python bench/history_bench.py [--conversations 1000000] [--messages 10000000] [--held 1000000] [--rounds 5]
                                  [--keep]

Both databases hold the same live set (LIVE conversations with two messages waiting inside their window); the
loaded one also holds `conversations` closed conversations with `messages` answered messages between them, and
`held` replies whose delivery is held by a receiver outage (due in an hour). `--keep` reuses a loaded database
left by an earlier run with the same sizes (filling 10M messages takes minutes).

Measured in-process (Django's test client, no HTTP; the webhook and lag figures need real processes and are in
reply_lag_bench.py): the list the UI polls (first page, a later page, by status, by id prefix), a conversation's
detail, the admin's changelists, one idle sweep, delivery's periodic step, the claims of due replies and of due
deliveries (rolled back), and the rows one second of periodic work reads at rest (pg_stat_database, flushed).
"""

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EMPTY, LOADED = "realmate_history_empty", "realmate_history_loaded"
LIVE = 1_000


def admin_sql(*statements: str, dbname: str = "postgres") -> list:
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=dbname, autocommit=True) as connection:
        rows = []
        for statement in statements:
            cursor = connection.execute(statement)
            rows = cursor.fetchall() if cursor.description else rows
        return rows


def create(name: str) -> None:
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
        "DJANGO_SETTINGS_MODULE": "realmate.settings.local",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


LIVE_IDS = f"(SELECT md5('live' || n)::uuid FROM generate_series(1, {LIVE}) AS n)"


def fill_live(name: str) -> None:
    """The live set, afresh: what an earlier run left of it (answered by its live part) goes first."""
    admin_sql(
        f"DELETE FROM chat_message WHERE conversation_id IN {LIVE_IDS}",
        f"DELETE FROM chat_conversation WHERE id IN {LIVE_IDS}",
        f"""INSERT INTO chat_conversation (id, status) SELECT md5('live' || n)::uuid, 'OPEN'
            FROM generate_series(1, {LIVE}) AS n""",
        f"""INSERT INTO chat_message (id, conversation_id, type, content, timestamp, pending)
            SELECT md5('live' || n || k)::uuid, md5('live' || n)::uuid, 'INBOUND', 'oi', now(), true
            FROM generate_series(1, {LIVE}) AS n, generate_series(1, 2) AS k""",
        # Their moment, as the webhook sets it: due a window from now, and due for the rest of the run.
        f"UPDATE chat_conversation SET reply_due_at = now() + interval '5 seconds' WHERE id IN {LIVE_IDS}",
        # An earlier reply of each, delivered: the admin's delivery list has a page to show.
        f"""INSERT INTO chat_message (id, conversation_id, type, author, content, timestamp, pending, send_reason)
            SELECT md5('live-reply' || n)::uuid, md5('live' || n)::uuid, 'OUTBOUND', 'bot', 'ok', now(), false, 'quiet'
            FROM generate_series(1, {LIVE}) AS n""",
        f"""INSERT INTO delivery_replydelivery (message_id, state, attempts, last_error, give_up_at, delivered_at,
                                                 next_attempt_at)
            SELECT md5('live-reply' || n)::uuid, 'delivered', 1, '', now(), now(), NULL
            FROM generate_series(1, {LIVE}) AS n""",
        "ANALYZE",
        dbname=name,
    )


def fill_history(name: str, conversations: int, messages: int, held: int) -> None:
    """Closed conversations a day old or more, half their messages INBOUND answered by the other half; `held`
    of the replies wait for their delivery. Indexes are dropped for the load and built again after it."""
    tables = ("chat_conversation", "chat_message", "delivery_replydelivery")
    indexes = admin_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
        f"({', '.join(repr(t) for t in tables)}) AND indexname NOT LIKE '%pkey'",
        dbname=name,
    )
    per = max(2, messages // conversations)
    admin_sql(
        "SET maintenance_work_mem = '1GB'",
        *[f'DROP INDEX "{index}"' for index, _ in indexes],
        f"""INSERT INTO chat_conversation (id, status, created_at, updated_at, closed_at)
            SELECT md5('h' || n)::uuid, 'CLOSED', t, t, t
            FROM generate_series(1, {conversations}) AS n,
                 LATERAL (SELECT now() - interval '1 day' - n * interval '1 second') AS at (t)""",
        f"""INSERT INTO chat_message (id, conversation_id, type, author, content, timestamp, received_at, pending,
                                      send_reason)
            SELECT md5('m' || n || '-' || k)::uuid, md5('h' || n)::uuid,
                   CASE WHEN k % 2 = 0 THEN 'OUTBOUND' ELSE 'INBOUND' END,
                   CASE WHEN k % 2 = 0 THEN 'bot' ELSE 'user' END, 'histórico',
                   now() - interval '1 day' - n * interval '1 second' + k * interval '1 ms',
                   now() - interval '1 day' - n * interval '1 second' + k * interval '1 ms', false,
                   CASE WHEN k % 2 = 0 THEN 'quiet' ELSE '' END
            FROM generate_series(1, {conversations}) AS n, generate_series(1, {per}) AS k""",
        f"""INSERT INTO delivery_replydelivery (message_id, state, attempts, last_error, created_at, give_up_at,
                                                 next_attempt_at)
            SELECT md5('m' || n || '-2')::uuid, 'pending', 3, 'HTTP 503', now(), now() + interval '1 day',
                   now() + interval '1 hour'
            FROM generate_series(1, {held}) AS n""",
        *[definition for _, definition in indexes],
        "VACUUM ANALYZE",
        dbname=name,
    )


def loaded_matches(conversations: int, messages: int, held: int) -> bool:
    try:
        [found] = admin_sql(
            "SELECT (SELECT count(*) FROM chat_conversation), (SELECT count(*) FROM chat_message),"
            " (SELECT count(*) FROM delivery_replydelivery)",
            dbname=LOADED,
        )
    except psycopg.Error:
        return False
    per = max(2, messages // conversations)
    return found == (conversations + LIVE, conversations * per + 3 * LIVE, held + LIVE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=10_000_000)
    parser.add_argument("--held", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20, help="requests of each kind per database and round")
    parser.add_argument("--keep", action="store_true", help="reuse a loaded database of the same sizes")
    parser.add_argument("--live-rounds", type=int, default=2, help="rounds of the live part (0: skip it)")
    args = parser.parse_args()

    create(EMPTY)
    fill_live(EMPTY)
    if args.keep and loaded_matches(args.conversations, args.messages, args.held):
        fill_live(LOADED)
    else:
        started = time.perf_counter()
        create(LOADED)
        fill_live(LOADED)
        fill_history(LOADED, args.conversations, args.messages, args.held)
        print(f"filled {LOADED} in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{EMPTY}",
        DJANGO_SETTINGS_MODULE="realmate.settings.local",
        LOG_LEVEL="WARNING",
        ALLOWED_HOSTS="testserver",
        # Delivery on (to a closed port: nothing is sent here), so its periodic step does its work.
        REPLY_WEBHOOK_URL="http://127.0.0.1:9/replies",
    )
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.test import Client

    from delivery.queries import deliveries_claim
    from delivery.services import deliveries_wake_due
    from scheduler.queries import CLAIM_SQL
    from scheduler.services import sweep_run

    client = Client()

    def use(name: str) -> None:
        connection.close()
        connection.settings_dict["NAME"] = name
        user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
        client.force_login(user)

    def get(path: str) -> None:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)

    def sweep() -> None:
        sweep_run(wake=lambda countdown: None)

    def claim() -> None:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(CLAIM_SQL, {"limit": 500})
                cursor.fetchall()
            transaction.set_rollback(True)

    def delivery_step() -> None:
        deliveries_wake_due(wake=lambda: None)

    def delivery_claim() -> None:
        with transaction.atomic():
            deliveries_claim(token=uuid.uuid4(), limit=500, claim_seconds=21)
            transaction.set_rollback(True)

    def rows_read() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        [(read,)] = admin_sql(
            "SELECT tup_returned + tup_fetched FROM pg_stat_database WHERE datname = current_database()",
            dbname=connection.settings_dict["NAME"],
        )
        return read

    def rows_at_rest() -> float:
        """Rows read by one second's periodic work at rest: a sweep and delivery's step."""
        before = rows_read()
        for _ in range(10):
            sweep()
            delivery_step()
        return (rows_read() - before) / 10

    paths = {}
    for name in (EMPTY, LOADED):
        use(name)
        page = client.get("/conversations/?page_size=20").json()
        paths[name] = {
            "list, first page": "/conversations/?page_size=20",
            "list, next page": page["next"],
            "list, OPEN": "/conversations/?status=OPEN&page_size=20",
            "list, CLOSED": "/conversations/?status=CLOSED&page_size=20",
            # Four hex digits: about one conversation in 65,536 matches (a shorter prefix matches more, and costs so).
            "list, id prefix": "/conversations/?q=4b2f&page_size=20",
            "detail": f"/conversations/{page['results'][0]['id']}/",
            "admin conversations": "/admin/chat/conversation/",
            "admin messages": "/admin/chat/message/",
            "admin deliveries": "/admin/delivery/replydelivery/",
        }
    actions = {
        "sweep": sweep,
        "claim of due replies": claim,
        "delivery step": delivery_step,
        "claim of due deliveries": delivery_claim,
    }
    kinds = [*paths[EMPTY], *actions]
    times = {name: {kind: [] for kind in kinds} for name in (EMPTY, LOADED)}
    read_at_rest = {EMPTY: [], LOADED: []}
    for _ in range(args.rounds):
        for name in (EMPTY, LOADED):
            use(name)
            for kind in kinds:
                action = actions.get(kind)
                action() if action else get(paths[name][kind])  # warm-up: the first after switching databases
                for _ in range(args.runs):
                    started = time.perf_counter()
                    action() if action else get(paths[name][kind])
                    times[name][kind].append((time.perf_counter() - started) * 1000)
            read_at_rest[name].append(rows_at_rest())

    def p(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    print(
        f"\nhistory benchmark: empty (live set of {LIVE:,} conversations) against loaded (+{args.conversations:,} "
        f"conversations, {args.messages:,} messages, {args.held:,} held deliveries); {args.rounds} alternating "
        f"rounds of {args.runs} each\n"
    )
    print("| path | empty p50 ms | loaded p50 ms | p50 x | empty p99 ms | loaded p99 ms | p99 x |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in kinds:
        empty, loaded = times[EMPTY][kind], times[LOADED][kind]
        e50, l50, e99, l99 = p(empty, 50), p(loaded, 50), p(empty, 99), p(loaded, 99)
        print(f"| {kind} | {e50:.2f} | {l50:.2f} | {l50 / e50:.2f} | {e99:.2f} | {l99:.2f} | {l99 / e99:.2f} |")
    e_rows, l_rows = statistics.median(read_at_rest[EMPTY]), statistics.median(read_at_rest[LOADED])
    growth = l_rows / max(e_rows, 1)
    print(f"| rows read a second at rest (sweep, delivery step) | {e_rows:,.0f} | {l_rows:,.0f} | {growth:.2f} |||")
    use(LOADED)
    print("\nplan of the claim of due replies, loaded:")
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + CLAIM_SQL, {"limit": 500})
        print("\n".join("    " + line for (line,) in cursor.fetchall()))
    connection.close()
    if args.live_rounds:
        live(args)


def live(args: argparse.Namespace) -> None:
    """Light traffic on the real stack (gunicorn, worker, beat; true windows) over each database in turn: the
    webhook's p50/p99 (client side) and the reply lag p50/p99 (database clock)."""
    from bench.purge_bench import live_events, phase
    from tests.e2e.stack import Stack
    from tests.helpers import wait_until

    class OnDatabase(Stack):
        """The real stack on a database that exists and stays."""

        def _create_database(self) -> None:
            self.db_name = self.name

        def _drop_database(self) -> None:
            pass

    results: dict[str, list[dict]] = {EMPTY: [], LOADED: []}
    env = {"GROUP_WINDOW_SECONDS": "5", "ORPHAN_TTL_SECONDS": "6", "SWEEP_INTERVAL_SECONDS": "1"}
    rng = random.Random(3)
    for _ in range(args.live_rounds):
        for name in (EMPTY, LOADED):
            stack = OnDatabase(name, env=env)
            stack.start()
            events, conversations = live_events(5, 20, rng)
            try:
                wait_until(stack.nothing_pending, timeout=120, interval=0.5, what="the live set answered")
                results[name].append(phase(stack, events, conversations))
            finally:
                stack.stop()
                with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True) as db:
                    db.execute("DELETE FROM chat_message WHERE conversation_id = ANY(%s)", [conversations])
                    db.execute("DELETE FROM chat_conversation WHERE id = ANY(%s)", [conversations])
    print(f"\nlive: 100 conversations over 20 s (bursts of 1-3 messages), the real stack, {args.live_rounds} rounds\n")
    print("| database | webhook p50 ms | webhook p99 ms | reply lag p50 s | reply lag p99 s |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in results.items():
        print(
            f"| {'loaded' if name == LOADED else 'empty'} | {statistics.median(r['p50'] for r in runs):.1f} | "
            f"{max(r['p99'] for r in runs):.1f} | {statistics.median(r['lag50'] for r in runs):.3f} | "
            f"{max(r['lag99'] for r in runs):.3f} |"
        )


if __name__ == "__main__":
    main()
