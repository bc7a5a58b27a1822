"""The delivery state of each OUTBOUND reply POSTed to REPLY_WEBHOOK_URL, and of the receiver (delivery.services)."""

from django.db import models
from django.db.models import Q

from chat.models import Message
from core.clock import ClockTimestamp


class ReplyDelivery(models.Model):
    """One per OUTBOUND written while REPLY_WEBHOOK_URL is set. PostgreSQL is the queue of record: a pending row
    whose `next_attempt_at` has come is due, and the next delivery batch claims it; Celery only carries wake-ups.

    A batch claims its rows with a token (`claim_token`) and pushes their `next_attempt_at` past the batch's last
    possible moment: a batch that dies leaves rows that fall due again by themselves, and a batch that outlived its
    claim settles nothing but a success, since the token is no longer the row's.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    # The foreign key is the database's, with ON DELETE CASCADE (delivery's 0001_initial; Django 5.2 cannot declare
    # the action): chat erases a conversation's messages with one statement and need not know what other apps keep.
    message = models.OneToOneField(
        Message, primary_key=True, on_delete=models.CASCADE, related_name="delivery", db_constraint=False
    )
    state = models.CharField(max_length=9, choices=State.choices, default=State.PENDING)
    # POSTs started, the one in flight included.
    attempts = models.PositiveIntegerField(default=0)
    # Why the last attempt did not deliver (status and the start of the body, or the transport error).
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    # No retry starts after this (REPLY_DELIVERY_MAX_SECONDS after the reply, or after an admin's retry).
    give_up_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    # The batch that holds the row (None: no batch does).
    claim_token = models.UUIDField(null=True, blank=True)
    # When a pending delivery is due: now for a new one, after its backoff for a retry, after the claim's end while
    # a batch holds it. None once settled.
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_default=ClockTimestamp())

    class Meta:
        verbose_name_plural = "reply deliveries"
        indexes = [
            # A batch claims the rows due longest by walking this index in order; the sweep's "is anything due?" and
            # "which due rows are past give_up_at?" read only it too.
            models.Index(fields=["next_attempt_at"], condition=Q(state="pending"), name="delivery_pending_due_idx"),
            models.Index(fields=["state"], condition=~Q(state="delivered"), name="delivery_undelivered_idx"),
            # Giving up reads only the rows past give_up_at, however many are held back.
            models.Index(fields=["give_up_at"], condition=Q(state="pending"), name="delivery_give_up_idx"),
            # The admin's list, newest first (the admin orders ties by the primary key; one batch's rows share a time).
            models.Index(fields=["created_at", "message"], name="delivery_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "delivered", "failed"]), name="delivery_state_valid"
            ),
            # A pending row without a next attempt would never be claimed, nor given up.
            models.CheckConstraint(
                condition=~Q(state="pending") | Q(next_attempt_at__isnull=False),
                name="delivery_pending_has_next_attempt",
            ),
            models.CheckConstraint(
                condition=Q(state="delivered", delivered_at__isnull=False)
                | (~Q(state="delivered") & Q(delivered_at__isnull=True)),
                name="delivery_delivered_at_matches_state",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} ({self.state}, {self.attempts} attempts)"


class DeliveryAttempt(models.Model):
    """One POST of a reply, for the attempt log (the API, the admin, the UI). Written by the batch's settle, in its
    one statement, for every reply it POSTed; deleted with its delivery by the database's ON DELETE CASCADE
    (0001_initial), so with its conversation."""

    class Outcome(models.TextChoices):
        DELIVERED = "delivered"
        RETRY = "retry"  # the receiver's trouble: tried again later
        FAILED = "failed"  # refused, or given up

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(
        ReplyDelivery, on_delete=models.CASCADE, related_name="attempt_log", db_constraint=False, db_index=False
    )
    # X-Delivery-Attempt of the POST.
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    # From the POST's start to its answer (or its timeout, or the error), in milliseconds.
    duration_ms = models.FloatField()
    # The receiver's HTTP status; None when there was no answer (a timeout, a connection error).
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=9, choices=Outcome.choices)
    error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            # One row per POST (each claim numbers its attempt); its index serves a delivery's log, newest first.
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_delivery_number_unique"),
            models.CheckConstraint(
                condition=Q(outcome__in=["delivered", "retry", "failed"]), name="attempt_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number} ({self.outcome})"


class ReceiverCircuit(models.Model):
    """One row: the circuit breaker in front of REPLY_WEBHOOK_URL, shared by every delivery process
    (delivery.circuit). Closed (`opened_at` empty), batches go out; open, one probe every REPLY_CIRCUIT_PROBE_SECONDS
    and nothing else, until a probe gets an answer."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    # Receiver failures in a row (timeouts, connection errors, 408, 429, 5xx); any other answer resets it.
    failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    # While open: when the next probe may start.
    probe_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # When the receiver answered 410 Gone: nothing is sent until an operator enables it again (delivery.circuit).
    disabled_at = models.DateTimeField(null=True, blank=True)
    # With REPLY_WEBHOOK_RATE: the end of the POST slots booked so far (delivery.pace); the next batch's slots start
    # here, or now if it has passed.
    paced_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="receiver_circuit_single_row")]

    def __str__(self) -> str:
        return "disabled" if self.disabled_at else "open" if self.opened_at else "closed"


class ReplyRecovery(models.Model):
    """An operator's recovery: every reply whose delivery was opened in [since, until) sent again, delivered or
    failed (the admin, `manage.py recover_replies`, the API). A background job: delivery's periodic step queues its
    replies a batch at a time, only while less than a batch is due, so live replies never wait behind more than
    one batch of it (delivery.recovery). Replies pending anyway are left to their own delivery (`skipped`)."""

    class State(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        CANCELLED = "cancelled"

    id = models.BigAutoField(primary_key=True)
    since = models.DateTimeField()
    until = models.DateTimeField()
    state = models.CharField(max_length=9, choices=State.choices, default=State.RUNNING)
    # Who asked: a user's name, or the management command.
    requested_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    finished_at = models.DateTimeField(null=True, blank=True)
    # Deliveries in the range, counted by the first step (None until then).
    total = models.PositiveIntegerField(null=True, blank=True)
    # Sent again so far, and left alone because they were pending anyway.
    requeued = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    # Where the next step starts: after this delivery, in (created_at, message) order (None: at `since`).
    after_created_at = models.DateTimeField(null=True, blank=True)
    after_message_id = models.UUIDField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "reply recoveries"
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["running", "done", "cancelled"]), name="recovery_state_valid"
            ),
            models.CheckConstraint(condition=Q(since__lt=models.F("until")), name="recovery_range_valid"),
        ]
        indexes = [
            # The periodic step's "is a recovery running?", however many have finished.
            models.Index(fields=["id"], condition=Q(state="running"), name="recovery_running_idx"),
        ]

    def __str__(self) -> str:
        return f"recovery {self.id} ({self.state})"

    @property
    def done_share(self) -> float | None:
        """The share of its replies handled so far, 0 to 1 (None until counted)."""
        if self.total is None:
            return None
        return 1.0 if self.total == 0 else min(1.0, (self.requeued + self.skipped) / self.total)
