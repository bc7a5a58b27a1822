"""Writes of the chat app. Every business rule of the webhook lives here; views only validate shape.

Locking, in one place so the reasoning can be checked:
- A NEW_MESSAGE holds FOR SHARE on its conversation until it commits. Webhooks never wait for each other,
  but a reply job (FOR NO KEY UPDATE) waits for in-flight messages and sees them, and a message that
  arrives while a job runs is stamped after the job commits. So a group's boundary is exact.
- CLOSE_CONVERSATION locks the row FOR NO KEY UPDATE before it updates it: a message either commits before
  the close (accepted, answered, and listed in the close's response) or sees the conversation CLOSED (400).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef

from chat.db import (
    ClockTimestamp,
    PreparedStatement,
    column_list,
    execute_prepared,
    model_columns,
    model_from_row,
)
from chat.errors import ChatError
from chat.models import MESSAGE_ORDER, Conversation, Message, PendingMessage, message_order_key

logger = logging.getLogger(__name__)

# The hot statements return rows that model_from_row turns into instances (cheaper than a RawQuerySet).
CONVERSATION_COLUMNS = model_columns(Conversation)

# One statement per event type for the common case, prepared once per connection (see PreparedStatement).

# Insert unless the id exists, and say whether messages are parked for it: one round trip. ON CONFLICT lets the
# primary key pick the one winner of concurrent duplicates.
CONVERSATION_INSERT = PreparedStatement(
    "chat_conversation_insert",
    f"""
    INSERT INTO chat_conversation (id, status, opened_event_at, created_at, updated_at)
    SELECT %(id)s, %(open)s, %(event_at)s, arrival, arrival FROM clock_timestamp() AS arrival
    ON CONFLICT (id) DO NOTHING
    RETURNING {CONVERSATION_COLUMNS}, EXISTS (
        SELECT 1 FROM chat_pendingmessage p WHERE p.conversation_id = chat_conversation.id AND p.state = %(parked)s
    )
    """,
    id="uuid",
    open="text",
    event_at="timestamptz",
    parked="text",
)

# CLOSE_CONVERSATION is two statements sent in one round trip (one transaction). The first locks the row
# FOR NO KEY UPDATE, waiting for any NEW_MESSAGE in flight (FOR SHARE): a message either commits before the
# close or sees CLOSED. The second closes the row and returns it joined with its messages (the ORM's update()
# cannot return rows). It must be a statement of its own: a statement reads with the snapshot taken when it
# starts, so had it waited for the lock itself, it would miss the message that committed meanwhile.
CONVERSATION_LOCK = PreparedStatement(
    "chat_conversation_lock", "SELECT 1 FROM chat_conversation WHERE id = %(id)s FOR NO KEY UPDATE", id="uuid"
)
CONVERSATION_CLOSE = PreparedStatement(
    "chat_conversation_close",
    f"""
    WITH closed AS (
        UPDATE chat_conversation
        SET status = %(closed)s, closed_at = now(), updated_at = now(), closed_event_at = %(event_at)s
        WHERE id = %(id)s AND status = %(open)s
        RETURNING {CONVERSATION_COLUMNS}
    )
    SELECT closed.*, {model_columns(Message, "m")}
    FROM closed LEFT JOIN chat_message m ON m.conversation_id = closed.id
    ORDER BY {column_list(MESSAGE_ORDER, "m")}
    """,
    id="uuid",
    event_at="timestamptz",
    closed="text",
    open="text",
)

# Insert the message as pending if its conversation exists and is OPEN and the id is new in both tables: one
# round trip, one commit. It holds FOR SHARE on the conversation, like the careful path, so a reply job still
# sees the message or runs after it. Raw SQL because the ORM cannot lock a row for share and insert in one
# statement.
MESSAGE_INSERT_IF_OPEN = PreparedStatement(
    "chat_message_insert_if_open",
    """
    WITH conversation AS (
        SELECT id FROM chat_conversation WHERE id = %(conversation_id)s AND status = %(open)s FOR SHARE
    )
    INSERT INTO chat_message (id, conversation_id, type, content, timestamp, received_at, pending)
    SELECT %(id)s, conversation.id, %(inbound)s, %(content)s, %(timestamp)s, clock_timestamp(), true
    FROM conversation
    WHERE NOT EXISTS (SELECT 1 FROM chat_pendingmessage p WHERE p.id = %(id)s AND p.state <> %(attached)s)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
    """,
    id="uuid",
    conversation_id="uuid",
    content="text",
    timestamp="timestamptz",
    open="text",
    inbound="text",
    attached="text",
)


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


def conversation_created_in_time() -> Exists:
    """The attach rule, as a filter on PendingMessage: its conversation exists and was created within
    ORPHAN_TTL of the message's arrival. The sweep attaches what matches and expires what never can."""
    return Exists(
        Conversation.objects.filter(
            id=OuterRef("conversation_id"), created_at__lte=OuterRef("received_at") + orphan_ttl()
        )
    )


def conversation_create(*, conversation_id: uuid.UUID, event_at: datetime) -> Conversation:
    """Create an OPEN conversation and attach the messages parked for it within ORPHAN_TTL.

    Raises ChatError(conversation_exists) when the id is taken, also under concurrent duplicates:
    the primary key decides, so exactly one of N parallel requests succeeds.
    """
    with connection.cursor() as cursor:
        CONVERSATION_INSERT.execute(
            cursor,
            id=conversation_id,
            open=Conversation.Status.OPEN,
            event_at=event_at,
            parked=PendingMessage.State.PARKED,
        )
        row = cursor.fetchone()
    if row is None:
        raise ChatError("conversation_exists", f"Conversation {conversation_id} already exists.")
    conversation, has_parked = model_from_row(Conversation, row), row[-1]
    # A new conversation has no messages but the ones it adopts, so its list needs no query. The attach rule
    # compares arrival with created_at, so adopting after the commit is exact; a crash here leaves the
    # messages PARKED and the next sweep attaches them.
    conversation.message_list = _parked_messages_adopt(conversation) if has_parked else []
    logger.info("conversation created", extra={"conversation_id": str(conversation_id)})
    return conversation


def conversation_close(*, conversation_id: uuid.UUID, event_at: datetime) -> Conversation:
    """Close an OPEN conversation. Its pending group is answered at the next sweep, not dropped.

    Raises ChatError when the conversation does not exist or is already CLOSED.
    """
    with connection.cursor() as cursor:
        execute_prepared(
            cursor,
            [CONVERSATION_LOCK, CONVERSATION_CLOSE],
            id=conversation_id,
            event_at=event_at,
            closed=Conversation.Status.CLOSED,
            open=Conversation.Status.OPEN,
        )
        rows = cursor.fetchall()
    if not rows:
        if Conversation.objects.filter(id=conversation_id).exists():
            raise ChatError("conversation_already_closed", f"Conversation {conversation_id} is already closed.")
        raise ChatError("conversation_not_found", f"Conversation {conversation_id} does not exist.")
    conversation = model_from_row(Conversation, rows[0])
    # Each row is the conversation's columns, then one message's (NULLs when it has none).
    message_columns = len(Conversation._meta.concrete_fields)
    conversation.message_list = [
        model_from_row(Message, row[message_columns:]) for row in rows if row[message_columns] is not None
    ]
    logger.info("conversation closed", extra={"conversation_id": str(conversation_id)})
    return conversation


def message_receive(
    *, message_id: uuid.UUID, conversation_id: uuid.UUID, content: str, event_at: datetime
) -> MessageReceipt:
    """Store an INBOUND message as pending, or park it when its conversation does not exist yet.

    An exact redelivery (same id, conversation and content) is a DUPLICATE with no effect. Raises ChatError
    for a CLOSED conversation, an id already used elsewhere, or a parked id whose ORPHAN_TTL has passed.
    """
    if _message_insert_if_open(message_id, conversation_id, content, event_at):
        logger.info("message stored", extra={"conversation_id": str(conversation_id), "message_id": str(message_id)})
        return MessageReceipt(message_id, conversation_id, MessageReceipt.STORED)
    # Not stored by the fast path: unknown or closed conversation, or an id seen before. Decide with care.
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


def parked_messages_attach() -> int:
    """Move parked messages into their conversation when it was created within ORPHAN_TTL of their arrival.

    conversation_create adopts its own parked messages; this pass, run by every sweep, repairs the race of a
    message parked while its conversation was being created (neither transaction saw the other). Each message
    keeps its own arrival time, so its group window counts from when it arrived. Returns how many it attached.
    """
    with transaction.atomic():
        parked = PendingMessage.objects.filter(conversation_created_in_time(), state=PendingMessage.State.PARKED)
        return len(_parked_rows_attach(list(parked.select_for_update(skip_locked=True))))


def _parked_rows_attach(rows: list[PendingMessage]) -> list[Message]:
    """Copy locked PARKED rows into Message as pending INBOUND messages and mark them ATTACHED.

    Runs inside the caller's transaction. Like a NEW_MESSAGE, it holds FOR SHARE on the conversations, so a
    reply job running now either sees these messages or runs after them.
    """
    if not rows:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM chat_conversation WHERE id = ANY(%s) FOR SHARE",
            [list({row.conversation_id for row in rows})],
        )
    messages = Message.objects.bulk_create(
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
    return sorted(messages, key=message_order_key)


def _parked_messages_adopt(conversation: Conversation) -> list[Message]:
    """The messages parked for a conversation just created, moved into it (its creation decides the TTL)."""
    with transaction.atomic():
        parked = PendingMessage.objects.select_for_update().filter(
            conversation_created_in_time(), conversation_id=conversation.id, state=PendingMessage.State.PARKED
        )
        return _parked_rows_attach(list(parked))


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


def _message_insert_if_open(
    message_id: uuid.UUID, conversation_id: uuid.UUID, content: str, event_at: datetime
) -> bool:
    """True when MESSAGE_INSERT_IF_OPEN stored the message: the common case in one round trip."""
    with connection.cursor() as cursor:
        MESSAGE_INSERT_IF_OPEN.execute(
            cursor,
            id=message_id,
            conversation_id=conversation_id,
            content=content,
            timestamp=event_at,
            open=Conversation.Status.OPEN,
            inbound=Message.Type.INBOUND,
            attached=PendingMessage.State.ATTACHED,
        )
        return cursor.fetchone() is not None


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
