"""The delivery state of each OUTBOUND reply POSTed to REPLY_WEBHOOK_URL (delivery.services)."""

from django.db import models
from django.db.models import Q

from chat.db import ClockTimestamp
from chat.models import Message


class ReplyDelivery(models.Model):
    """One per OUTBOUND written while REPLY_WEBHOOK_URL is set; the row is the truth, Celery only carries jobs.

    A job may attempt only while it holds the lease: it carries the `lease_token` it was dispatched with, and
    each attempt and each retry sets a new one, so a job that was lost, duplicated or overtaken does nothing.
    A pending row whose `lease_until` has passed has no live job: the sweep dispatches a new one.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    message = models.OneToOneField(Message, primary_key=True, on_delete=models.CASCADE, related_name="delivery")
    state = models.CharField(max_length=9, choices=State.choices, default=State.PENDING)
    # POSTs started, the one in flight included.
    attempts = models.PositiveIntegerField(default=0)
    # Why the last attempt did not deliver (status and the start of the body, or the transport error).
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    # No retry starts after this (REPLY_DELIVERY_MAX_SECONDS after the reply, or after an admin's retry).
    give_up_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "reply deliveries"
        indexes = [
            # The sweep's question, "which pending deliveries have no live job", reads only this index.
            models.Index(fields=["lease_until"], condition=Q(state="pending"), name="delivery_pending_lease_idx"),
            models.Index(fields=["state"], condition=~Q(state="delivered"), name="delivery_undelivered_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "delivered", "failed"]), name="delivery_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(state="delivered", delivered_at__isnull=False)
                | (~Q(state="delivered") & Q(delivered_at__isnull=True)),
                name="delivery_delivered_at_matches_state",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} ({self.state}, {self.attempts} attempts)"
