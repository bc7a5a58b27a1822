"""Reads of the chat app."""

import uuid

from django.db.models import Count, Q, QuerySet

from chat.models import Conversation


def conversation_get(*, conversation_id: uuid.UUID) -> Conversation | None:
    """One conversation with its messages (timestamp, then arrival order: Message.Meta.ordering); two queries."""
    return Conversation.objects.prefetch_related("messages").filter(id=conversation_id).first()


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
