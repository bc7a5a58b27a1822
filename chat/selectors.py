"""Reads of the chat app."""

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce, Now

from chat import queries
from chat.models import CONVERSATION_ORDER, Conversation, Message, ParkedMessage
from core.uuid_prefix import uuid_prefix_range


@dataclass(frozen=True)
class ConversationDetail:
    """A conversation and its newest messages (all of an ordinary conversation) in conversation order
    (timestamp, then arrival): what the detail endpoint and the webhook's NEW_CONVERSATION and
    CLOSE_CONVERSATION answers show. `older` is the cursor of the messages before these, None when there are
    none."""

    conversation: Conversation
    messages: list[Message]
    older: str | None = None

    @property
    def older_url(self) -> str | None:
        return None if self.older is None else f"/conversations/{self.conversation.id}/?before={self.older}"


def message_cursor(message: Message) -> str:
    """An opaque cursor for "the messages before this one": its MESSAGE_ORDER key."""
    key = f"{message.timestamp.isoformat()}|{message.received_at.isoformat()}|{message.id}"
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def message_cursor_read(cursor: str) -> tuple[datetime, datetime, uuid.UUID]:
    """The key a cursor holds; ValueError when it is not one of ours."""
    try:
        timestamp, received_at, message_id = (
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split("|")
        )
        key = (datetime.fromisoformat(timestamp), datetime.fromisoformat(received_at), uuid.UUID(message_id))
    except (UnicodeDecodeError, binascii.Error, ValueError) as exc:
        raise ValueError(f"not a message cursor: {cursor!r}") from exc
    if key[0].tzinfo is None or key[1].tzinfo is None:
        raise ValueError(f"not a message cursor: {cursor!r}")
    return key


def conversation_detail(conversation: Conversation, *, before: str | None = None) -> ConversationDetail:
    """The detail of a conversation already loaded: its newest MESSAGES_PER_PAGE messages (before the cursor
    `before`, if given) in one query. Raises ValueError for a cursor that is not one."""
    limit = settings.MESSAGES_PER_PAGE
    key = message_cursor_read(before) if before else None
    messages = queries.conversation_messages(conversation.id, limit=limit, before=key)
    if len(messages) <= limit:
        return ConversationDetail(conversation, messages)
    return ConversationDetail(conversation, messages[1:], older=message_cursor(messages[1]))


def conversation_get(*, conversation_id: uuid.UUID, before: str | None = None) -> ConversationDetail | None:
    """One conversation with its newest messages (or those before the cursor); two queries."""
    conversation = Conversation.objects.filter(id=conversation_id).first()
    return None if conversation is None else conversation_detail(conversation, before=before)


def conversation_list(*, status: str | None = None, id_prefix: str | None = None) -> QuerySet[Conversation]:
    """Conversations in CONVERSATION_ORDER, each with how many of its messages wait for a reply; optionally by
    status and by the start of the id. Meant to be paged by key: every filter and the order are served by an index,
    and the pending count is a subquery the database runs for the rows of the page only."""
    waiting = (
        Message.objects.filter(conversation=OuterRef("pk"), pending=True)
        .order_by()
        .values("conversation")
        .annotate(count=Count("*"))
        .values("count")
    )
    conversations = Conversation.objects.annotate(pending_count=Coalesce(Subquery(waiting), 0)).order_by(
        *CONVERSATION_ORDER
    )
    if status:
        conversations = conversations.filter(status=status)
    if id_prefix:
        conversations = conversations.filter(id__range=uuid_prefix_range(id_prefix))
    return conversations


def messages_pending_count() -> int:
    """INBOUND messages waiting for their reply (an index-only count: message_pending_idx holds just them)."""
    return Message.objects.filter(pending=True).count()


def conversations_paused_count() -> int:
    """Conversations a person has now (bot_paused_until in the future; conversation_paused_idx)."""
    return Conversation.objects.filter(bot_paused_until__gt=Now()).count()


def parked_messages() -> QuerySet[ParkedMessage]:
    """Messages parked, waiting for their conversation to be created."""
    return ParkedMessage.objects.filter(state=ParkedMessage.State.PARKED)


def parked_messages_count() -> int:
    return parked_messages().count()


def parked_messages_exist() -> bool:
    return parked_messages().exists()
