"""Reads of the chat app."""

import uuid

from django.db.models import Count, Q, QuerySet

from chat.models import MESSAGE_ORDER, Conversation


def conversation_get(*, conversation_id: uuid.UUID) -> Conversation | None:
    """One conversation with its messages (timestamp, then arrival order), in two queries whatever its size."""
    conversation = Conversation.objects.filter(id=conversation_id).first()
    if conversation is not None:
        conversation.message_list = list(conversation.messages.order_by(*MESSAGE_ORDER))
    return conversation


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
