"""Reads of the delivery app, for the API, /metrics and /healthz."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, prefetch_related_objects

from chat.models import Message
from delivery.models import ReceiverCircuit, ReplyDelivery


def replies_deliveries_load(messages: Iterable[Message]) -> None:
    """Loads the delivery of each OUTBOUND among `messages` in one query (none when there is no reply), so that
    `message.delivery` costs nothing after it. INBOUND messages have none and are left alone."""
    prefetch_related_objects([message for message in messages if message.type == Message.Type.OUTBOUND], "delivery")


def deliveries_undelivered_count() -> dict[str, int]:
    """Deliveries not delivered, by state (pending, failed); one index-only query."""
    counts = dict.fromkeys([ReplyDelivery.State.PENDING, ReplyDelivery.State.FAILED], 0)
    rows = (
        ReplyDelivery.objects.exclude(state=ReplyDelivery.State.DELIVERED)
        .values("state")
        .annotate(count=Count("*"))
        .values_list("state", "count")
    )
    counts.update(rows)
    return counts


def circuit_opened() -> tuple[datetime, str] | None:
    """When the receiver's circuit opened and its last error; None while it is closed (or was never written)."""
    return ReceiverCircuit.objects.filter(opened_at__isnull=False).values_list("opened_at", "last_error").first()
