"""Conversations, their messages, and messages parked while their conversation does not exist yet."""

import uuid

from django.db import models
from django.db.models import Q

from core.clock import ClockTimestamp

MESSAGE_ORDER = ("timestamp", "received_at", "id")
# Newest activity first; ties (one reply batch stamps many conversations alike) by id, so pages never overlap.
CONVERSATION_ORDER = ("-updated_at", "-id")


# What a conversation's own reply rules may say (NEW_CONVERSATION's data.reply_rules), bounds included.
REPLY_WINDOW_RANGE = (1, 60)
REPLY_MAX_WAIT_RANGE = (1, 3600)
REPLY_MAX_MESSAGES_RANGE = (1, 1000)


def message_order_key(message: "Message") -> tuple:
    """MESSAGE_ORDER in Python, for messages already in memory (PostgreSQL orders UUIDs as their hex strings)."""
    return (message.timestamp, message.received_at, str(message.id))


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "OPEN"
        CLOSED = "CLOSED"

    id = models.UUIDField(primary_key=True)
    status = models.CharField(max_length=6, choices=Status.choices, default=Status.OPEN)
    # Event times as the sender stated them; stored, never used for windows.
    opened_event_at = models.DateTimeField(null=True, blank=True)
    closed_event_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=ClockTimestamp())
    # Last change seen by a reader: created, closed, or a reply written.
    updated_at = models.DateTimeField(db_default=ClockTimestamp())
    closed_at = models.DateTimeField(null=True, blank=True)
    # When the reply engine may next have a group of this conversation to answer: a lower bound, never later than
    # the true moment (scheduler.grouping decides). Set when a group starts (its first message's arrival plus the
    # shortest wait), brought forward by a full group or a close, moved by each batch that looks; None while no
    # message waits. The reply engine claims only the conversations whose moment has come.
    reply_due_at = models.DateTimeField(null=True, blank=True)
    # While this is in the future a person has the conversation (chat.takeover): the messages that arrive are stored
    # and never answered by the service. Past or None: the bot answers as usual.
    bot_paused_until = models.DateTimeField(null=True, blank=True)
    # This conversation's own reply rules (NEW_CONVERSATION's data.reply_rules); None follows the service's setting.
    reply_window_seconds = models.FloatField(null=True, blank=True)
    reply_max_wait_seconds = models.FloatField(null=True, blank=True)
    reply_max_messages = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = list(CONVERSATION_ORDER)
        indexes = [
            # The list pages by key in CONVERSATION_ORDER (a backward scan), with a status filter or without.
            models.Index(fields=["updated_at", "id"], name="conversation_activity_idx"),
            models.Index(fields=["status", "updated_at", "id"], name="conversation_status_idx"),
            # Its size is the number of conversations with messages waiting, not of conversations.
            models.Index(fields=["reply_due_at"], condition=Q(reply_due_at__isnull=False), name="conversation_due_idx"),
            # The conversations a person has now: a range at the index's end, however many pauses have ended.
            models.Index(
                fields=["bot_paused_until"], condition=Q(bot_paused_until__isnull=False), name="conversation_paused_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["OPEN", "CLOSED"]), name="conversation_status_valid"),
            models.CheckConstraint(
                condition=Q(status="OPEN", closed_at__isnull=True) | Q(status="CLOSED", closed_at__isnull=False),
                name="conversation_closed_at_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(reply_window_seconds__range=REPLY_WINDOW_RANGE) | Q(reply_window_seconds__isnull=True),
                name="conversation_reply_window_range",
            ),
            models.CheckConstraint(
                condition=Q(reply_max_wait_seconds__range=REPLY_MAX_WAIT_RANGE)
                | Q(reply_max_wait_seconds__isnull=True),
                name="conversation_reply_max_wait_range",
            ),
            models.CheckConstraint(
                condition=Q(reply_max_messages__range=REPLY_MAX_MESSAGES_RANGE) | Q(reply_max_messages__isnull=True),
                name="conversation_reply_max_messages_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class Message(models.Model):
    class Type(models.TextChoices):
        INBOUND = "INBOUND"
        OUTBOUND = "OUTBOUND"

    class SendReason(models.TextChoices):
        QUIET = "quiet"  # GROUP_WINDOW of quiet after the group's last message
        MAX_WAIT = "max_wait"  # its first message waited MAX_GROUP_WAIT_SECONDS
        MAX_MESSAGES = "max_messages"  # it held MAX_GROUP_MESSAGES messages
        CLOSED = "closed"  # its conversation was closed
        HANDOFF = "handoff"  # its last message asked for a person (HANDOFF_KEYWORDS)

    class Author(models.TextChoices):
        USER = "user"  # INBOUND
        BOT = "bot"  # a reply of this service
        AGENT = "agent"  # a person, from the customer-service system (AGENT_MESSAGE)

    id = models.UUIDField(primary_key=True)
    # No index of its own: message_conversation_order_idx starts with conversation_id. One index fewer for every
    # NEW_MESSAGE to write.
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False)
    type = models.CharField(max_length=8, choices=Type.choices)
    # Who wrote it; a database default, so the raw INSERTs of INBOUND messages need not name it.
    author = models.CharField(max_length=5, choices=Author.choices, default=Author.USER, db_default=Author.USER)
    content = models.TextField()
    # Event time from the payload (for OUTBOUND: when it was generated). Orders the conversation, never a window.
    timestamp = models.DateTimeField()
    # Arrival time on the database clock; the group window is measured on it.
    received_at = models.DateTimeField(db_default=ClockTimestamp())
    # INBOUND still waiting for its reply.
    pending = models.BooleanField(default=False)
    # INBOUND that a person has (chat.takeover): it waited when an agent took the conversation, or arrived while
    # one had it. The service never answers it.
    taken_over = models.BooleanField(default=False, db_default=False)
    # INBOUND that asked for a person (HANDOFF_KEYWORDS): its group is answered at once and the bot pauses.
    handoff = models.BooleanField(default=False, db_default=False)
    # Why an OUTBOUND was sent; empty for INBOUND (a database default, so the raw INSERTs need not name it).
    send_reason = models.CharField(max_length=12, choices=SendReason.choices, blank=True, default="", db_default="")
    # A bot's reply: when its group fell due by the reason it carries (scheduler.grouping.group_due_at), for the
    # message's timeline. Empty for the rest.
    due_at = models.DateTimeField(null=True, blank=True)
    # With traces on (core.tracing), the W3C traceparent of the span that produced it, when that was sampled: the
    # webhook request of a message that came in, the reply span of a bot's reply. The reply batch reads an
    # INBOUND's, delivery a reply's, each in another process, to continue the trace.
    traceparent = models.CharField(max_length=55, blank=True, default="", db_default="")
    # The OUTBOUND that answered this INBOUND.
    reply = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="answers", db_index=False
    )

    class Meta:
        ordering = list(MESSAGE_ORDER)
        indexes = [
            models.Index(fields=["conversation", "timestamp", "received_at"], name="message_conversation_order_idx"),
            # The sweep reads only this index: its size is the number of waiting messages, not the table's.
            models.Index(
                fields=["conversation", "received_at"],
                condition=Q(pending=True),
                name="message_pending_idx",
            ),
            # For deleting a reply (SET_NULL on its answers). Partial: an INBOUND has no reply when it is inserted,
            # so NEW_MESSAGE writes nothing here.
            models.Index(fields=["reply"], condition=Q(reply__isnull=False), name="message_reply_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(type__in=["INBOUND", "OUTBOUND"]), name="message_type_valid"),
            models.CheckConstraint(condition=Q(type="INBOUND") | Q(pending=False), name="message_outbound_not_pending"),
            models.CheckConstraint(
                condition=Q(type="INBOUND", author="user") | Q(type="OUTBOUND", author__in=["bot", "agent"]),
                name="message_author_matches_type",
            ),
            models.CheckConstraint(
                condition=Q(taken_over=False) | Q(type="INBOUND", pending=False), name="message_taken_over_inbound"
            ),
            models.CheckConstraint(condition=Q(handoff=False) | Q(type="INBOUND"), name="message_handoff_inbound"),
            models.CheckConstraint(condition=~Q(content=""), name="message_content_not_empty"),
            # Only the bot's replies say why they were sent.
            models.CheckConstraint(condition=Q(author="bot") | Q(send_reason=""), name="message_send_reason_only_bot"),
            models.CheckConstraint(condition=Q(author="bot") | Q(due_at__isnull=True), name="message_due_at_only_bot"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class ParkedMessage(models.Model):
    """A NEW_MESSAGE or AGENT_MESSAGE whose conversation did not exist when it arrived (ORPHAN_TTL, see
    chat.parking)."""

    class State(models.TextChoices):
        PARKED = "PARKED"
        ATTACHED = "ATTACHED"
        EXPIRED = "EXPIRED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    # A plain UUID, not a foreign key: the conversation is exactly what does not exist yet.
    conversation_id = models.UUIDField()
    # user (a NEW_MESSAGE) or agent (an AGENT_MESSAGE).
    author = models.CharField(
        max_length=5, choices=Message.Author.choices, default=Message.Author.USER, db_default=Message.Author.USER
    )
    content = models.TextField()
    timestamp = models.DateTimeField()
    received_at = models.DateTimeField(db_default=ClockTimestamp())
    # A NEW_MESSAGE that asked for a person (HANDOFF_KEYWORDS), decided as it arrived.
    handoff = models.BooleanField(default=False, db_default=False)
    # Its webhook request's traceparent (Message.traceparent), carried to the message when it is attached.
    traceparent = models.CharField(max_length=55, blank=True, default="", db_default="")
    state = models.CharField(max_length=8, choices=State.choices, default=State.PARKED)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Every state, not only PARKED: erasing a conversation deletes its attached and expired ones too.
            models.Index(fields=["conversation_id"], name="parked_conversation_idx"),
            models.Index(fields=["received_at"], condition=Q(state="PARKED"), name="parked_age_idx"),
            models.Index(fields=["resolved_at"], condition=~Q(state="PARKED"), name="parked_resolved_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(state__in=["PARKED", "ATTACHED", "EXPIRED"]), name="parked_state_valid"),
            models.CheckConstraint(condition=Q(author__in=["user", "agent"]), name="parked_author_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.id} -> {self.conversation_id} ({self.state})"
