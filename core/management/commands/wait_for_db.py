"""Block until PostgreSQL answers (and, with --migrated, until every migration is applied)."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection
from django.db.migrations.executor import MigrationExecutor


class Command(BaseCommand):
    help = "Wait for the database; used by the entrypoint before each role starts."
    # The web role's migrate shows the system checks once per start; this command would repeat them.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=60.0, help="Seconds to wait before failing.")
        parser.add_argument("--migrated", action="store_true", help="Also wait until no migration is pending.")

    def handle(self, *args, timeout: float, migrated: bool, **options):
        deadline = time.monotonic() + timeout
        while True:
            try:
                connection.ensure_connection()
                if not migrated or not self._unapplied_migrations():
                    return
                reason = "migrations pending"
            except OperationalError as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "unreachable"
                connection.close()
            if time.monotonic() > deadline:
                raise CommandError(f"database not ready after {timeout:g} s: {reason}")
            time.sleep(0.5)

    def _unapplied_migrations(self) -> bool:
        executor = MigrationExecutor(connection)
        return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))
