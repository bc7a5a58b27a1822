"""Builders of webhook payloads and small database helpers shared by the tests."""

from datetime import timedelta

from django.db import connection

from chat.models import Message, PendingMessage


def event(event_type: str, data, timestamp: str = "2025-06-04T14:20:00Z") -> dict:
    return {"type": event_type, "timestamp": timestamp, "data": data}


def new_conversation(conversation_id) -> dict:
    return event("NEW_CONVERSATION", {"id": str(conversation_id)})


def new_message(message_id, conversation_id, content: str = "Olá, quero alugar um apartamento.") -> dict:
    return event("NEW_MESSAGE", {"id": str(message_id), "content": content, "conversation_id": str(conversation_id)})


def close_conversation(conversation_id) -> dict:
    return event("CLOSE_CONVERSATION", {"id": str(conversation_id)})


def age_rows(model: type[Message] | type[PendingMessage], ids, seconds: float) -> None:
    """Move arrival times back in time, as if the rows had arrived `seconds` earlier."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} SET received_at = received_at - %s WHERE id = ANY(%s::uuid[])",
            [timedelta(seconds=seconds), [str(i) for i in ids]],
        )
