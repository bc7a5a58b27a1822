"""Writes of the chat app. Every business rule of the webhook lives here; views only validate shape.

Locking, in one place so the reasoning can be checked:
- A NEW_MESSAGE holds FOR SHARE on its conversation until it commits. Webhooks never wait for each other,
  but a reply job (FOR NO KEY UPDATE) waits for in-flight messages and sees them, and a message that
  arrives while a job runs is stamped after the job commits. So a group's boundary is exact.
- CLOSE_CONVERSATION takes FOR NO KEY UPDATE too: a message either commits before the close (accepted and
  answered) or sees the conversation CLOSED (400).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef

from chat.db import ClockTimestamp
from chat.errors import ChatError
from chat.models import Conversation, Message, PendingMessage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessageReceipt:
    """What happened to a NEW_MESSAGE: stored, parked (conversation unknown yet) or an exact redelivery."""

    STORED = "stored"
    PARKED = "parked"
    DUPLICATE = "duplicate"

    message_id: uuid.UUID
    conversation_id: uuid.UUID
    outcome: str


def orphan_ttl() -> timedelta:
    return timedelta(seconds=settings.ORPHAN_TTL_SECONDS)


def conversation_create(*, conversation_id: uuid.UUID, event_at: datetime) -> Conversation:
    """Create an OPEN conversation and attach the messages parked for it within ORPHAN_TTL.

    Raises ChatError(conversation_exists) when the id is taken, also under concurrent duplicates:
    the primary key decides, so exactly one of N parallel requests succeeds.
    """
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(id=conversation_id, opened_event_at=event_at)
            parked_messages_attach(conversation_ids=[conversation_id], wait_for_locks=True)
    except IntegrityError as exc:
        if _violated_constraint(exc) != "chat_conversation_pkey":
            raise
        raise ChatError("conversation_exists", f"Conversation {conversation_id} already exists.") from exc
    logger.info("conversation created", extra={"conversation_id": str(conversation_id)})
    return conversation


def conversation_close(*, conversation_id: uuid.UUID, event_at: datetime) -> Conversation:
    """Close an OPEN conversation. Its pending group is answered at the next sweep, not dropped."""
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(no_key=True)
            .annotate(db_now=ClockTimestamp())
            .filter(id=conversation_id)
            .first()
        )
        if conversation is None:
            raise ChatError("conversation_not_found", f"Conversation {conversation_id} does not exist.")
        if conversation.status == Conversation.Status.CLOSED:
            raise ChatError("conversation_already_closed", f"Conversation {conversation_id} is already closed.")
        conversation.status = Conversation.Status.CLOSED
        conversation.closed_at = conversation.updated_at = conversation.db_now
        conversation.closed_event_at = event_at
        conversation.save(update_fields=["status", "closed_at", "updated_at", "closed_event_at"])
    logger.info("conversation closed", extra={"conversation_id": str(conversation_id)})
    return conversation


def message_receive(
    *, message_id: uuid.UUID, conversation_id: uuid.UUID, content: str, event_at: datetime
) -> MessageReceipt:
    """Store an INBOUND message as pending, or park it when its conversation does not exist yet.

    An exact redelivery (same id, conversation and content) is a DUPLICATE with no effect. Raises ChatError
    for a CLOSED conversation, an id already used elsewhere, or a parked id whose ORPHAN_TTL has passed.
    """
    try:
        with transaction.atomic():
            status, id_parked = _conversation_status_for_share(conversation_id, message_id)
            if status is None:
                return _message_park(message_id, conversation_id, content, event_at)
            if status == Conversation.Status.CLOSED:
                if _message_is_redelivery(message_id, conversation_id, content):
                    return MessageReceipt(message_id, conversation_id, MessageReceipt.DUPLICATE)
                raise ChatError("conversation_closed", f"Conversation {conversation_id} is closed.")
            if id_parked:
                # Parked before its conversation existed: a redelivery (the sweep attaches it), or expired.
                return _parked_duplicate(PendingMessage.objects.get(id=message_id), conversation_id, content)
            Message.objects.create(
                id=message_id,
                conversation_id=conversation_id,
                type=Message.Type.INBOUND,
                content=content,
                timestamp=event_at,
                pending=True,
            )
    except IntegrityError as exc:
        # The id exists already: a redelivery (maybe concurrent) or a reuse of the id with other data.
        if _violated_constraint(exc) not in {"chat_message_pkey", "chat_pendingmessage_pkey"}:
            raise
        return _message_duplicate(message_id, conversation_id, content)
    logger.info("message stored", extra={"conversation_id": str(conversation_id), "message_id": str(message_id)})
    return MessageReceipt(message_id, conversation_id, MessageReceipt.STORED)


def parked_messages_attach(*, conversation_ids: list[uuid.UUID] | None = None, wait_for_locks: bool = False) -> int:
    """Move parked messages into their conversation when it was created within ORPHAN_TTL of their arrival.

    Called by conversation_create for its own id, and by the sweep for all conversations, which repairs the
    race of a message parked while its conversation was being created. Each message keeps its own arrival
    time, so its group window counts from when it arrived. Returns how many were attached.
    """
    created_in_time = Conversation.objects.filter(
        id=OuterRef("conversation_id"), created_at__lte=OuterRef("received_at") + orphan_ttl()
    )
    parked = PendingMessage.objects.filter(Exists(created_in_time), state=PendingMessage.State.PARKED)
    if conversation_ids is not None:
        parked = parked.filter(conversation_id__in=conversation_ids)
    with transaction.atomic():
        rows = list(parked.select_for_update(skip_locked=not wait_for_locks))
        if not rows:
            return 0
        # Like a NEW_MESSAGE, hold FOR SHARE on the conversations, so a reply job running now either sees
        # these messages or runs after them.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM chat_conversation WHERE id = ANY(%s) FOR SHARE",
                [list({row.conversation_id for row in rows})],
            )
        Message.objects.bulk_create(
            [
                Message(
                    id=row.id,
                    conversation_id=row.conversation_id,
                    type=Message.Type.INBOUND,
                    content=row.content,
                    timestamp=row.timestamp,
                    received_at=row.received_at,
                    pending=True,
                )
                for row in rows
            ],
            ignore_conflicts=True,
        )
        PendingMessage.objects.filter(id__in=[row.id for row in rows]).update(
            state=PendingMessage.State.ATTACHED, resolved_at=ClockTimestamp()
        )
    for row in rows:
        logger.info(
            "parked message attached",
            extra={"conversation_id": str(row.conversation_id), "message_id": str(row.id)},
        )
    return len(rows)


def _message_park(
    message_id: uuid.UUID, conversation_id: uuid.UUID, content: str, event_at: datetime
) -> MessageReceipt:
    if Message.objects.filter(id=message_id).exists():
        raise _id_conflict(message_id)
    existing = PendingMessage.objects.filter(id=message_id).first()
    if existing is not None:
        return _parked_duplicate(existing, conversation_id, content)
    PendingMessage.objects.create(id=message_id, conversation_id=conversation_id, content=content, timestamp=event_at)
    logger.info("message parked", extra={"conversation_id": str(conversation_id), "message_id": str(message_id)})
    return MessageReceipt(message_id, conversation_id, MessageReceipt.PARKED)


def _message_duplicate(message_id: uuid.UUID, conversation_id: uuid.UUID, content: str) -> MessageReceipt:
    """Classify a NEW_MESSAGE whose id is stored already, after its insert lost to the primary key."""
    if _message_is_redelivery(message_id, conversation_id, content):
        return MessageReceipt(message_id, conversation_id, MessageReceipt.DUPLICATE)
    parked = PendingMessage.objects.filter(id=message_id).first()
    if parked is not None and not Message.objects.filter(id=message_id).exists():
        return _parked_duplicate(parked, conversation_id, content)
    raise _id_conflict(message_id)


def _parked_duplicate(parked: PendingMessage, conversation_id: uuid.UUID, content: str) -> MessageReceipt:
    if parked.conversation_id != conversation_id or parked.content != content:
        raise _id_conflict(parked.id)
    expired = parked.state == PendingMessage.State.EXPIRED or (
        parked.state == PendingMessage.State.PARKED
        and PendingMessage.objects.filter(id=parked.id, received_at__lt=ClockTimestamp() - orphan_ttl()).exists()
    )
    if expired:
        raise ChatError(
            "buffer_expired",
            f"Message {parked.id} waited more than {settings.ORPHAN_TTL_SECONDS:g} s for its conversation "
            "and expired; it will not be processed.",
        )
    return MessageReceipt(parked.id, conversation_id, MessageReceipt.DUPLICATE)


def _message_is_redelivery(message_id: uuid.UUID, conversation_id: uuid.UUID, content: str) -> bool:
    return Message.objects.filter(
        id=message_id, conversation_id=conversation_id, content=content, type=Message.Type.INBOUND
    ).exists()


def _id_conflict(message_id: uuid.UUID) -> ChatError:
    return ChatError(
        "message_id_conflict",
        f"Message id {message_id} is already used in another conversation or with other content.",
    )


def _conversation_status_for_share(conversation_id: uuid.UUID, message_id: uuid.UUID) -> tuple[str | None, bool]:
    """The conversation's status under FOR SHARE (None when absent), and whether the message id is parked.

    Raw SQL because the ORM has no FOR SHARE; both answers come in one round trip on the hot path.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.status,
                   EXISTS (SELECT 1 FROM chat_pendingmessage p WHERE p.id = %s AND p.state <> %s)
            FROM chat_conversation c
            WHERE c.id = %s
            FOR SHARE OF c
            """,
            [message_id, PendingMessage.State.ATTACHED, conversation_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None, False
    return row[0], row[1]


def _violated_constraint(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)
