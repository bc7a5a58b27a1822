"""Reads of the chat app."""

import uuid
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from chat import queries
from chat.models import Conversation, Message


@dataclass(frozen=True)
class ConversationDetail:
    """A conversation and its messages in conversation order (timestamp, then arrival): what the detail
    endpoint and the webhook's NEW_CONVERSATION and CLOSE_CONVERSATION answers show."""

    conversation: Conversation
    messages: list[Message]


def conversation_detail(conversation: Conversation) -> ConversationDetail:
    """The detail of a conversation already loaded: one query, its messages."""
    return ConversationDetail(conversation, queries.conversation_messages(conversation.id))


def conversation_get(*, conversation_id: uuid.UUID) -> ConversationDetail | None:
    """One conversation with its messages; two queries."""
    conversation = Conversation.objects.filter(id=conversation_id).first()
    return None if conversation is None else conversation_detail(conversation)


def conversation_list(*, status: str | None = None, id_prefix: str | None = None) -> QuerySet[Conversation]:
    """Conversations, newest activity first, with their message counts; optionally by status and id prefix."""
    conversations = Conversation.objects.annotate(
        message_count=Count("messages"),
        pending_count=Count("messages", filter=Q(messages__pending=True)),
    ).order_by("-updated_at", "id")
    if status:
        conversations = conversations.filter(status=status)
    if id_prefix:
        conversations = conversations.filter(id__startswith=id_prefix.lower())
    return conversations
