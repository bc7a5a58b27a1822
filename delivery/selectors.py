"""Reads of the delivery app, for the API, /metrics and /healthz."""

import re
from collections.abc import Iterable

from django.db.models import Count, Prefetch, prefetch_related_objects

from chat.models import Message
from delivery.models import DeliveryAttempt, ReceiverCircuit, ReplyDelivery, ReplyRecovery

# A reply's attempt log shows its newest attempts only: a reply retried for a day has hundreds.
ATTEMPT_LOG_SHOWN = 20
NEWEST_ATTEMPTS = "newest_attempts"


def replies_deliveries_load(messages: Iterable[Message]) -> None:
    """Loads the delivery of each OUTBOUND among `messages` and its newest ATTEMPT_LOG_SHOWN attempts, in two
    queries (none when there is no reply), so that `message.delivery` and `delivery.attempt_log.all()` cost nothing
    after it. INBOUND messages have none and are left alone."""
    replies = [message for message in messages if message.type == Message.Type.OUTBOUND]
    prefetch_related_objects(replies, "delivery")
    # A sliced prefetch needs an attribute of its own, and works from the deliveries. PostgreSQL numbers a
    # delivery's attempts in a window before it keeps the newest: at most about 300 (a day of retries at the
    # longest backoff), read through the (delivery, number) unique index.
    deliveries = [reply.delivery for reply in replies if getattr(reply, "delivery", None) is not None]
    prefetch_related_objects(deliveries, Prefetch("attempt_log", _newest_attempts(), to_attr=NEWEST_ATTEMPTS))


def _newest_attempts():
    return DeliveryAttempt.objects.order_by("-number")[:ATTEMPT_LOG_SHOWN]


def delivery_newest_attempts(delivery: ReplyDelivery) -> list[DeliveryAttempt]:
    """A delivery's newest ATTEMPT_LOG_SHOWN attempts, newest first, as replies_deliveries_load loaded them (a
    delivery it did not load is read here, one query)."""
    if hasattr(delivery, NEWEST_ATTEMPTS):
        return getattr(delivery, NEWEST_ATTEMPTS)
    return list(_newest_attempts().filter(delivery=delivery))


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


def receiver_state() -> ReceiverCircuit:
    """The receiver's circuit row, in one query: `opened_at` while its circuit is open, `disabled_at` while a 410
    Gone disabled it, and the last error; a closed, enabled one when the row was never written."""
    return ReceiverCircuit.objects.filter(id=1).first() or ReceiverCircuit()


def recovery_find(recovery_id: str) -> ReplyRecovery | None:
    """The recovery with this id, as a path gives it; None for no such recovery, or for text that is no id (ASCII
    digits that fit a bigint)."""
    if not re.fullmatch(r"[0-9]{1,18}", recovery_id):
        return None
    return ReplyRecovery.objects.filter(id=int(recovery_id)).first()
