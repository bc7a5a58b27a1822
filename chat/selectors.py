"""Reads of the chat app."""

import uuid

from django.db.models import Count, Prefetch, Q, QuerySet

from chat.models import Conversation, Message


def conversation_get(*, conversation_id: uuid.UUID) -> Conversation | None:
    """One conversation with its messages (timestamp, then arrival order), in two queries whatever its size."""
    messages = Message.objects.order_by("timestamp", "received_at", "id")
    return (
        Conversation.objects.prefetch_related(Prefetch("messages", queryset=messages))
        .filter(id=conversation_id)
        .first()
    )


def conversation_list(*, status: str | None = None) -> QuerySet[Conversation]:
    """Conversations, newest activity first, with their message counts."""
    conversations = Conversation.objects.annotate(
        message_count=Count("messages"),
        pending_count=Count("messages", filter=Q(messages__pending=True)),
    ).order_by("-updated_at", "id")
    if status:
        conversations = conversations.filter(status=status)
    return conversations
