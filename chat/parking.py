"""Parked messages: a NEW_MESSAGE or AGENT_MESSAGE whose conversation does not exist yet waits here for up to
ORPHAN_TTL.

Its whole life is in this module:
- park: a message for an unknown conversation is stored as PARKED (parked_message_park);
- adopt: NEW_CONVERSATION moves the messages parked for it into the conversation (parked_messages_adopt);
- attach: each sweep repairs the race of a message parked while its conversation was being created
  (parked_messages_attach);
- expire: each sweep marks EXPIRED the messages whose conversation did not come in time (parked_messages_expire);
- purge: a daily job deletes attached and expired ones after PARKED_RETENTION_DAYS (parked_messages_purge).
The attach rule is one expression, conversation_created_in_time: the conversation was created within ORPHAN_TTL
of the message's arrival, both on the database clock. Attached messages are decided as if they had arrived live, in
arrival order: an agent's pauses the bot and takes the waiting messages over, a user's that arrived during a pause
is taken over, and a handoff word answers its group at once and pauses the bot (chat.takeover).
"""

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef

from chat import queries
from chat.models import Conversation, Message, ParkedMessage
from chat.reply_timing import group_rules
from chat.takeover import TakeoverSource
from core import metrics
from core.clock import ClockTimestamp
from core.errors import ApplicationError

logger = logging.getLogger(__name__)

# A parked message is marked EXPIRED this long after its TTL, not at once: a conversation created within the
# TTL whose transaction has not committed yet must still find it PARKED. The attach rule itself is exact.
EXPIRY_GRACE = timedelta(seconds=1)


def orphan_ttl() -> timedelta:
    return timedelta(seconds=settings.ORPHAN_TTL_SECONDS)


def conversation_created_in_time() -> Exists:
    """The attach rule, as a filter on ParkedMessage: its conversation exists and was created within
    ORPHAN_TTL of the message's arrival."""
    return Exists(
        Conversation.objects.filter(
            id=OuterRef("conversation_id"), created_at__lte=OuterRef("received_at") + orphan_ttl()
        )
    )


def parked_message_park(
    *,
    message_id: uuid.UUID,
    conversation_id: uuid.UUID,
    content: str,
    event_at: datetime,
    author: str = Message.Author.USER,
    handoff: bool = False,
    traceparent: str = "",
) -> None:
    """Store a message as PARKED. Raises IntegrityError when the id is parked already (the caller classifies it, see
    parked_message_redelivery)."""
    ParkedMessage.objects.create(
        id=message_id,
        conversation_id=conversation_id,
        content=content,
        timestamp=event_at,
        author=author,
        handoff=handoff,
        traceparent=traceparent,
    )
    logger.info("message parked", extra={"conversation_id": str(conversation_id), "message_id": str(message_id)})


def parked_message_redelivery(
    parked: ParkedMessage, *, conversation_id: uuid.UUID, content: str, author: str = Message.Author.USER
) -> None:
    """A message whose id is parked: fine when it is the same message still within ORPHAN_TTL (a redelivery;
    the message keeps waiting or was attached). Raises message_id_conflict for other data, buffer_expired when
    the TTL has passed, whether or not a sweep has marked it EXPIRED yet."""
    if (parked.conversation_id, parked.content, parked.author) != (conversation_id, content, author):
        raise ApplicationError(
            "message_id_conflict",
            f"Message id {parked.id} is already used in another conversation or with other content.",
        )
    expired = parked.state == ParkedMessage.State.EXPIRED or (
        parked.state == ParkedMessage.State.PARKED
        and ParkedMessage.objects.filter(id=parked.id, received_at__lt=ClockTimestamp() - orphan_ttl()).exists()
    )
    if expired:
        raise ApplicationError(
            "buffer_expired",
            f"Message {parked.id} waited more than {settings.ORPHAN_TTL_SECONDS:g} s for its conversation "
            "and expired; it will not be processed.",
        )


def parked_messages_adopt(conversation: Conversation) -> list[Message]:
    """Move the messages parked for a conversation just created into it (its creation decides the TTL)."""
    with transaction.atomic():
        parked = (
            ParkedMessage.objects.select_for_update()
            .filter(conversation_created_in_time(), conversation_id=conversation.id, state=ParkedMessage.State.PARKED)
            .order_by("id")  # the order erasure locks them in
        )
        return _attach(list(parked))


def parked_messages_attach() -> int:
    """Attach the parked messages whose conversation was created within ORPHAN_TTL of their arrival: the race
    of a message parked while its conversation was being created (neither transaction saw the other). Each
    keeps its own arrival time, so its group window counts from when it arrived. Returns how many."""
    with transaction.atomic():
        parked = ParkedMessage.objects.filter(conversation_created_in_time(), state=ParkedMessage.State.PARKED)
        return len(_attach(list(parked.select_for_update(skip_locked=True).order_by("id"))))


def parked_messages_expire() -> int:
    """Mark EXPIRED the parked messages whose conversation did not arrive within ORPHAN_TTL (plus the grace)."""
    return (
        ParkedMessage.objects.filter(
            state=ParkedMessage.State.PARKED, received_at__lt=ClockTimestamp() - orphan_ttl() - EXPIRY_GRACE
        )
        .exclude(conversation_created_in_time())
        .update(state=ParkedMessage.State.EXPIRED, resolved_at=ClockTimestamp())
    )


def parked_messages_purge() -> int:
    """Delete attached and expired parked messages older than PARKED_RETENTION_DAYS; returns the count."""
    cutoff = ClockTimestamp() - timedelta(days=settings.PARKED_RETENTION_DAYS)
    deleted, _ = ParkedMessage.objects.exclude(state=ParkedMessage.State.PARKED).filter(resolved_at__lt=cutoff).delete()
    return deleted


@dataclass
class AttachPlan:
    """What attaching some parked rows does: the messages to insert, the pauses they begin or extend (by
    conversation), and the takeovers they begin (by what began each)."""

    messages: list[Message] = field(default_factory=list)
    paused_until: dict[uuid.UUID, datetime] = field(default_factory=dict)
    began: dict[uuid.UUID, str] = field(default_factory=dict)


def attach_plan(
    rows: list[ParkedMessage], conversations: dict[uuid.UUID, tuple[str, datetime | None]], pause: timedelta
) -> AttachPlan:
    """Decide parked rows in arrival order as if they had arrived live, against each conversation's (status,
    bot_paused_until): an agent's message begins or extends a pause; a user's handoff word does too, unless a pause
    was in force at its arrival; a CLOSED conversation is paused by nothing. A user's message that arrived during a
    pause is taken over later, by messages_take_over, with the messages that waited."""
    plan = AttachPlan()
    for row in sorted(rows, key=lambda row: (row.received_at, row.id)):
        status, until = conversations[row.conversation_id]
        until = plan.paused_until.get(row.conversation_id, until)
        paused = until is not None and row.received_at < until
        agent = row.author == Message.Author.AGENT
        handoff = row.handoff and not paused
        if (agent or handoff) and status == Conversation.Status.OPEN:
            plan.paused_until[row.conversation_id] = max(filter(None, [until, row.received_at + pause]))
            if not paused:
                plan.began[row.conversation_id] = TakeoverSource.AGENT_MESSAGE if agent else TakeoverSource.HANDOFF
        plan.messages.append(
            Message(
                id=row.id,
                conversation_id=row.conversation_id,
                type=Message.Type.OUTBOUND if agent else Message.Type.INBOUND,
                author=row.author,
                content=row.content,
                timestamp=row.timestamp,
                received_at=row.received_at,
                pending=not agent,
                handoff=handoff,
                traceparent=row.traceparent,
            )
        )
    return plan


def _attach(rows: list[ParkedMessage]) -> list[Message]:
    """Copy locked PARKED rows into Message and mark them ATTACHED: a user's as INBOUND, an agent's as OUTBOUND.

    Runs inside the caller's transaction. Like a NEW_MESSAGE, it locks the conversations, so a reply batch running
    now either sees these messages or runs after them, and brings their reply_due_at forward for these messages.
    The rows are decided by attach_plan.
    """
    if not rows:
        return []
    conversations = queries.conversations_lock(list({row.conversation_id for row in rows}))
    plan = attach_plan(rows, conversations, timedelta(seconds=settings.BOT_PAUSE_SECONDS))
    messages = Message.objects.bulk_create(plan.messages, ignore_conflicts=True)
    if plan.paused_until:
        queries.conversations_pause_extend(plan.paused_until)
    queries.messages_take_over(list(conversations))
    queries.conversations_due_from_pending(list(conversations), group_rules())
    ParkedMessage.objects.filter(id__in=[row.id for row in rows]).update(
        state=ParkedMessage.State.ATTACHED, resolved_at=ClockTimestamp()
    )
    transaction.on_commit(lambda: [metrics.TAKEOVERS.labels(source).inc() for source in plan.began.values()])
    for row in rows:
        logger.info(
            "parked message attached", extra={"conversation_id": str(row.conversation_id), "message_id": str(row.id)}
        )
    return messages
