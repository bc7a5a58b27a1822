"""Erase conversations by id, with everything stored about them."""

import uuid

from django.core.management.base import BaseCommand, CommandError

from chat.erasure import conversations_erase


class Command(BaseCommand):
    help = "Erase conversations and everything about them: messages, replies' deliveries, parked messages."

    def add_arguments(self, parser):
        parser.add_argument("ids", nargs="+", help="Conversation ids (UUIDs).")

    def handle(self, *args, ids: list[str], **options):
        try:
            conversation_ids = [uuid.UUID(value) for value in ids]
        except ValueError as exc:
            raise CommandError(f"Not a conversation id: {exc}") from exc
        erased = conversations_erase(conversation_ids)
        self.stdout.write(
            f"erased {erased.conversations} conversations, {erased.messages} messages and {erased.parked} parked "
            f"messages"
        )
        if erased.nothing:
            raise CommandError("Nothing found for these ids.")
