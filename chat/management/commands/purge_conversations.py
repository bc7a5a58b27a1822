"""Erase the conversations whose last activity is older than the retention, as the daily purge does."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from chat.erasure import Erased, conversations_purge

PROGRESS_SECONDS = 5


class Command(BaseCommand):
    help = (
        "Erase conversations whose last activity is more than --days (default: CONVERSATION_RETENTION_DAYS) days "
        "old, with their messages, deliveries and parked messages, a few hundred per transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=float, help="Retention in days; overrides CONVERSATION_RETENTION_DAYS.")

    def handle(self, *args, days: float | None = None, **options):
        days = days if days is not None else settings.CONVERSATION_RETENTION_DAYS
        if days is None:
            raise CommandError("No retention: set CONVERSATION_RETENTION_DAYS or pass --days.")

        shown = time.monotonic()

        def progress(erased: Erased) -> None:
            nonlocal shown
            if time.monotonic() - shown >= PROGRESS_SECONDS:
                shown = time.monotonic()
                self.stdout.write(f"... {erased.conversations} conversations, {erased.messages} messages so far")

        try:
            erased = conversations_purge(days=days, progress=progress)
        except ValueError as exc:
            raise CommandError(f"{exc}; pass more than 0 days.") from exc
        self.stdout.write(
            f"erased {erased.conversations} conversations, {erased.messages} messages and {erased.parked} parked "
            f"messages inactive for more than {days:g} days"
        )
