"""Where a webhook request spends its CPU: cProfile over N requests of one event type, in-process through
Django's full request stack (middleware, DRF, the services) on a real PostgreSQL database of its own.

    python bench/profile_webhook.py NEW_CONVERSATION|NEW_MESSAGE|CLOSE_CONVERSATION [--requests 2000] [--top 30]

Prints the functions with the most cumulative and own time. Use it to find what to measure with
webhook_bench.py, not as a figure of its own (the profiler slows Python code, not the database).
"""

import argparse
import cProfile
import json
import os
import pstats
import secrets
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "realmate_profile"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("event", choices=["NEW_CONVERSATION", "NEW_MESSAGE", "CLOSE_CONVERSATION"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    os.environ.update(
        DJANGO_SETTINGS_MODULE="realmate.settings.production",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        LOG_LEVEL=os.environ.get("LOG_LEVEL", "INFO"),
    )
    import psycopg

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{DB_NAME}"')

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    client = Client()
    conversations = [str(uuid.uuid4()) for _ in range(args.requests)]
    if args.event != "NEW_CONVERSATION":
        for conversation_id in conversations:
            client.post("/webhook/", body(conversation_id, "NEW_CONVERSATION"), content_type="application/json")

    def run(count: int) -> None:
        for n in range(count):
            response = client.post("/webhook/", body(conversations[n], args.event), content_type="application/json")
            assert response.status_code < 300, response.content

    if args.event == "NEW_CONVERSATION":
        conversations = [str(uuid.uuid4()) for _ in range(args.requests)]
    profiler = cProfile.Profile()
    profiler.runcall(run, args.requests)
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)


def body(conversation_id: str, event: str) -> str:
    data = {"id": conversation_id}
    if event == "NEW_MESSAGE":
        data = {"id": str(uuid.uuid4()), "content": "Oi", "conversation_id": conversation_id}
    return json.dumps({"type": event, "timestamp": "2025-06-04T14:20:00Z", "data": data})


if __name__ == "__main__":
    main()
