"""Writes of the chat app: the webhook's conversation and message events. Every business rule of the webhook lives
here, in chat.parking or in chat.takeover; views only validate shape.

Locking, in one place so the reasoning can be checked:
- A NEW_MESSAGE holds FOR NO KEY UPDATE on its conversation until it commits (it may move the conversation's
  reply_due_at). Messages of one conversation take turns; messages of different conversations never wait for
  each other. A reply batch (the same lock, SKIP LOCKED) passes over in-flight messages and takes their
  conversation later, and a message that arrives while a batch holds its conversation is stamped after the
  batch commits. So a group's boundary is exact. An AGENT_MESSAGE takes the same lock (chat.takeover).
- CLOSE_CONVERSATION updates the row, which waits for those locks: a message either commits before the close
  (accepted, answered, and listed in the close's response) or sees the conversation CLOSED (400).
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus

from django.conf import settings
from django.db import IntegrityError, transaction

from chat import queries
from chat.handoff import handoff_keyword
from chat.models import Conversation, Message, ParkedMessage
from chat.parking import parked_message_park, parked_message_redelivery, parked_messages_adopt
from chat.reply_timing import group_rules
from chat.selectors import ConversationDetail, conversation_detail
from chat.takeover import TakeoverSource, bot_pause
from core import metrics, tracing
from core.errors import ApplicationError

logger = logging.getLogger(__name__)

# A NEW_MESSAGE that races with concurrent changes is decided again; each retry follows another transaction's
# commit (a conversation created, a duplicate parked), so a second pass settles it and a third is generous.
MESSAGE_ATTEMPTS = 3


@dataclass(frozen=True)
class MessageReceipt:
    """What happened to a NEW_MESSAGE: stored, parked (conversation unknown yet) or an exact redelivery."""

    STORED = "stored"
    PARKED = "parked"
    DUPLICATE = "duplicate"

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    outcome: str


def conversation_create(
    *, conversation_id: uuid.UUID, event_at: datetime, reply_rules: dict[str, float | int] | None = None
) -> ConversationDetail:
    """Create an OPEN conversation, with its own reply rules if given (window_seconds, max_wait_seconds,
    max_messages), and attach the messages parked for it within ORPHAN_TTL; returns it with those messages, its
    only ones.

    Raises ApplicationError(conversation_exists) when the id is taken, also under concurrent duplicates:
    the primary key decides, so exactly one of N parallel requests succeeds.
    """
    conversation = queries.conversation_insert(
        conversation_id=conversation_id, event_at=event_at, reply_rules=reply_rules
    )
    if conversation is None:
        raise ApplicationError("conversation_exists", f"Conversation {conversation_id} already exists.")
    # The attach rule compares arrival with created_at, so adopting after the commit is exact; a crash here
    # leaves the messages PARKED and the next sweep attaches them.
    logger.info("conversation created", extra={"conversation_id": str(conversation_id)})
    if conversation.has_parked:
        parked_messages_adopt(conversation)
        # Read again, whoever attached them (a sweep may have, between the commit and the adopt), and as attaching
        # left them (it may have paused the bot and taken messages over: chat.takeover).
        return conversation_detail(Conversation.objects.get(id=conversation_id))
    return ConversationDetail(conversation, [])


def conversation_close(*, conversation_id: uuid.UUID, event_at: datetime) -> ConversationDetail:
    """Close an OPEN conversation; returns it with its messages. Its pending group is answered at the next
    sweep, not dropped.

    Raises ApplicationError when the conversation does not exist or is already CLOSED.
    """
    conversation = queries.conversation_close(conversation_id=conversation_id, event_at=event_at)
    if conversation is None:
        if Conversation.objects.filter(id=conversation_id).exists():
            raise ApplicationError("conversation_already_closed", f"Conversation {conversation_id} is already closed.")
        raise ApplicationError("conversation_not_found", f"Conversation {conversation_id} does not exist.")
    logger.info("conversation closed", extra={"conversation_id": str(conversation_id)})
    # A statement of its own, after the close: it sees every message that committed before the close did.
    return conversation_detail(conversation)


def message_receive(
    *, message_id: uuid.UUID, conversation_id: uuid.UUID, content: str, event_at: datetime
) -> MessageReceipt:
    """Store an INBOUND message, or park it when its conversation does not exist yet.

    One statement stores a message (chat.queries.message_insert_if_open: the conversation is OPEN and the id is
    new): pending, or taken over while a person has the conversation. A message with a handoff word (chat.handoff)
    makes its group due at once and pauses the bot. When it stores nothing, _message_not_stored says why: an exact
    redelivery (same id, conversation and content) is a DUPLICATE with no effect; otherwise ApplicationError for a
    CLOSED conversation, an id used elsewhere or a parked id whose ORPHAN_TTL has passed; or the conversation is
    unknown and the message is parked.
    """
    rules = group_rules()
    keyword = handoff_keyword(content)

    def store() -> bool:
        inserted = queries.message_insert_if_open(
            message_id=message_id,
            conversation_id=conversation_id,
            content=content,
            event_at=event_at,
            rules=rules,
            handoff=keyword is not None,
            pause_seconds=settings.BOT_PAUSE_SECONDS,
            traceparent=tracing.traceparent(),
        )
        if inserted is not None and inserted.handoff:
            transaction.on_commit(lambda: _handoff_count(keyword, TakeoverSource.HANDOFF))
            logger.info("handoff asked", extra={"conversation_id": str(conversation_id), "keyword": keyword})
        return inserted is not None

    receipt = _message_store(
        store, message_id, conversation_id, content, event_at, author=Message.Author.USER, handoff=keyword is not None
    )
    if keyword is not None and receipt.outcome == MessageReceipt.PARKED:
        _handoff_count(keyword)  # asked as it arrived; its pause, if any, begins when it is attached
    return receipt


def _handoff_count(keyword: str, takeover: str | None = None) -> None:
    metrics.HANDOFFS.labels(keyword).inc()
    if takeover is not None:
        metrics.TAKEOVERS.labels(takeover).inc()


def agent_message_receive(
    *, message_id: uuid.UUID, conversation_id: uuid.UUID, content: str, event_at: datetime
) -> MessageReceipt:
    """Store what a person wrote to the user (an OUTBOUND by an agent) and pause the bot until BOT_PAUSE_SECONDS
    after it (chat.takeover), in one transaction: the group waiting now is the person's. Parked, redelivered and
    refused exactly as a NEW_MESSAGE."""

    def store() -> bool:
        with transaction.atomic():
            arrival = queries.agent_message_insert_if_open(
                message_id=message_id,
                conversation_id=conversation_id,
                content=content,
                event_at=event_at,
                traceparent=tracing.traceparent(),
            )
            if arrival is None:
                return False
            bot_pause(
                conversation_id=conversation_id,
                seconds=settings.BOT_PAUSE_SECONDS,
                since=arrival,
                extend=True,
                source=TakeoverSource.AGENT_MESSAGE,
            )
        return True

    return _message_store(store, message_id, conversation_id, content, event_at, author=Message.Author.AGENT)


def _message_store(
    store: Callable[[], bool],
    message_id: uuid.UUID,
    conversation_id: uuid.UUID,
    content: str,
    event_at: datetime,
    *,
    author: str,
    handoff: bool = False,
) -> MessageReceipt:
    """Run `store` (True: stored); when it stores nothing, decide why, and try again while a concurrent change
    explains it."""
    for _ in range(MESSAGE_ATTEMPTS):
        if store():
            logger.info(
                "message stored", extra={"conversation_id": str(conversation_id), "message_id": str(message_id)}
            )
            return MessageReceipt(message_id, conversation_id, MessageReceipt.STORED)
        receipt = _message_not_stored(message_id, conversation_id, content, event_at, author=author, handoff=handoff)
        if receipt is not None:
            return receipt
    raise ApplicationError(
        "try_again", f"Message {message_id} raced with concurrent changes; send it again.", status=HTTPStatus.CONFLICT
    )


def _message_not_stored(
    message_id: uuid.UUID,
    conversation_id: uuid.UUID,
    content: str,
    event_at: datetime,
    *,
    author: str,
    handoff: bool = False,
) -> MessageReceipt | None:
    """Why the insert stored nothing, decided with the conversation locked FOR SHARE. None when nothing explains it any
    more (the conversation was created after the insert looked, or a duplicate was parked meanwhile): the
    caller inserts again."""
    duplicate = MessageReceipt(message_id, conversation_id, MessageReceipt.DUPLICATE)
    with transaction.atomic():
        status = queries.conversation_status_for_share(conversation_id)
        stored = Message.objects.filter(id=message_id).first()
        if stored is not None and (stored.conversation_id, stored.content, stored.author) == (
            conversation_id,
            content,
            author,
        ):
            return duplicate
        if status == Conversation.Status.CLOSED:
            raise ApplicationError("conversation_closed", f"Conversation {conversation_id} is closed.")
        if stored is not None:
            raise ApplicationError(
                "message_id_conflict",
                f"Message id {message_id} is already used in another conversation or with other content.",
            )
        parked = ParkedMessage.objects.filter(id=message_id).exclude(state=ParkedMessage.State.ATTACHED).first()
        if parked is not None:
            parked_message_redelivery(parked, conversation_id=conversation_id, content=content, author=author)
            return duplicate
        if status is not None:
            return None
        try:
            with transaction.atomic():
                parked_message_park(
                    message_id=message_id,
                    conversation_id=conversation_id,
                    content=content,
                    event_at=event_at,
                    author=author,
                    handoff=handoff,
                    traceparent=tracing.traceparent(),
                )
        except IntegrityError:
            return None
    return MessageReceipt(message_id, conversation_id, MessageReceipt.PARKED)
