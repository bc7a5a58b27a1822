"""Erasure of one conversation and retention of all: a conversation deleted with everything stored about it (its
messages, its replies' deliveries, messages parked for it), in short transactions that webhooks and reply batches
do not wait long behind. A webhook that comes later for an erased conversation finds it unknown."""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from chat import queries

# Who may erase: staff (or a token's user) with Django's delete permission on conversations, in the API and the
# admin alike.
ERASE_PERMISSION = "chat.delete_conversation"
# Conversations per purge transaction: about 10 messages each, a few milliseconds of locks (bench/purge_bench.py).
PURGE_BATCH = 200


@dataclass
class Erased:
    conversations: int = 0
    messages: int = 0
    parked: int = 0
    # The purge stopped at its time budget with conversations still past retention.
    more: bool = False

    def add(self, conversations: int, messages: int, parked: int) -> None:
        self.conversations += conversations
        self.messages += messages
        self.parked += parked

    def add_all(self, other: "Erased") -> None:
        self.add(other.conversations, other.messages, other.parked)

    @property
    def nothing(self) -> bool:
        return not (self.conversations or self.messages or self.parked)


def conversations_erase(conversation_ids: list[uuid.UUID]) -> Erased:
    """Delete these conversations and everything about them, and any message parked for these ids, in one
    transaction; unknown ids are skipped. Waits for the webhooks and the reply batch that hold one of them."""
    erased = Erased()
    with transaction.atomic():
        queries.conversations_lock_for_erasure(conversation_ids)
        erased.add(*queries.conversations_delete(conversation_ids))
    return erased


def conversations_purge(
    *, days: float, budget_seconds: float | None = None, progress: Callable[[Erased], None] | None = None
) -> Erased:
    """Erase every conversation whose last activity is more than `days` old, PURGE_BATCH at a time, each batch its
    own transaction; conversations in use at that moment or with messages waiting for a reply are skipped (the
    next purge takes them). With `budget_seconds`, stops after the batch that passes it, saying whether more
    remain (`more`). ValueError for a retention of zero days or less."""
    if days <= 0:
        raise ValueError(f"a retention of {days:g} days would erase every conversation not in use")
    erased = Erased()
    started = time.monotonic()
    while True:
        with transaction.atomic():
            batch = queries.conversations_lock_inactive(days=days, limit=PURGE_BATCH)
            if batch:
                erased.add(*queries.conversations_delete(batch))
        if progress and batch:
            progress(erased)
        if len(batch) < PURGE_BATCH:
            return erased
        if budget_seconds is not None and time.monotonic() - started > budget_seconds:
            erased.more = True
            return erased


def conversations_purge_retention(*, budget_seconds: float) -> Erased:
    """The daily purge: conversations_purge with CONVERSATION_RETENTION_DAYS; nothing when it is not set."""
    days = settings.CONVERSATION_RETENTION_DAYS
    return Erased() if days is None else conversations_purge(days=days, budget_seconds=budget_seconds)
