"""Send again every reply in a time range, delivered or failed (delivery.recovery)."""

import time
from datetime import UTC

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.errors import ApplicationError
from delivery.models import ReplyRecovery
from delivery.recovery import recovery_start


def moment(value: str):
    try:
        parsed = parse_datetime(value)
    except ValueError:  # well-formed, but no such date or time
        parsed = None
    if parsed is None:
        raise CommandError(f"Not an ISO 8601 date and time: {value!r} (e.g. 2026-12-05T10:00:00Z).")
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)


class Command(BaseCommand):
    help = (
        "Send again every reply whose delivery was opened in [--since, --until), delivered or failed. A background "
        "job: the delivery worker and beat send them, a batch at a time, behind live replies."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, type=moment, help="ISO 8601, e.g. 2026-12-05T10:00:00Z.")
        parser.add_argument("--until", type=moment, help="ISO 8601 (default: now).")
        parser.add_argument("--wait", action="store_true", help="Print its progress until it is done.")

    def handle(self, *args, since, until, wait: bool, **options):
        try:
            recovery = recovery_start(since=since, until=until, requested_by="manage.py recover_replies")
        except ApplicationError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"recovery {recovery.id} started: replies from {recovery.since} to {recovery.until}")
        while wait and recovery.state == ReplyRecovery.State.RUNNING:
            time.sleep(1)
            recovery.refresh_from_db()
            self.stdout.write(self.progress(recovery))
        if not wait:
            self.stdout.write(
                f"follow it in the admin (Reply recoveries) or at /api/deliveries/recoveries/{recovery.id}/"
            )

    @staticmethod
    def progress(recovery: ReplyRecovery) -> str:
        counted = "not counted yet" if recovery.total is None else f"of {recovery.total}"
        return (
            f"recovery {recovery.id} {recovery.state}: {recovery.requeued} sent again, {recovery.skipped} pending "
            f"anyway, {counted}"
        )
