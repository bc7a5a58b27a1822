"""Shapes of the webhook events (input) and of conversations (output).

Serializers check shape only; the services enforce the rules.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.errors import ERROR_CODES
from chat.models import REPLY_MAX_MESSAGES_RANGE, REPLY_MAX_WAIT_RANGE, REPLY_WINDOW_RANGE, Conversation, Message
from chat.services import MessageReceipt
from core.serializer_fields import (
    StrictCharField,
    StrictDateTimeField,
    StrictFloatField,
    StrictIntegerField,
    StrictUUIDField,
    UTCDateTimeField,
)
from core.uuid_prefix import uuid_prefix_range
from delivery.serializers import DeliverySerializer

MAX_CONTENT_LENGTH = 65536
# PAUSE_BOT's `seconds`: a second to a week.
PAUSE_SECONDS_RANGE = (1, 7 * 24 * 3600)
WEBHOOK_EVENT_TYPES = [
    "NEW_CONVERSATION",
    "NEW_MESSAGE",
    "CLOSE_CONVERSATION",
    "AGENT_MESSAGE",
    "PAUSE_BOT",
    "RESUME_BOT",
]


class WebhookEnvelopeSerializer(serializers.Serializer):
    """The part every event shares: `{"type", "timestamp", "data"}`; unknown extra fields are ignored."""

    type = StrictCharField(max_length=64)
    timestamp = StrictDateTimeField(help_text="Event time (ISO-8601, naive means UTC). Stored, never used for windows.")
    data = serializers.DictField(help_text="The event's own fields; see each event type.")


class ReplyRulesSerializer(serializers.Serializer):
    """A conversation's own reply rules; each one left out follows the service's setting."""

    window_seconds = StrictFloatField(
        required=False,
        min_value=REPLY_WINDOW_RANGE[0],
        max_value=REPLY_WINDOW_RANGE[1],
        help_text="Seconds of quiet after the last message before the reply (GROUP_WINDOW_SECONDS otherwise).",
    )
    max_wait_seconds = StrictFloatField(
        required=False,
        min_value=REPLY_MAX_WAIT_RANGE[0],
        max_value=REPLY_MAX_WAIT_RANGE[1],
        help_text="A growing group is answered once its first message waited this long (MAX_GROUP_WAIT_SECONDS).",
    )
    max_messages = StrictIntegerField(
        required=False,
        min_value=REPLY_MAX_MESSAGES_RANGE[0],
        max_value=REPLY_MAX_MESSAGES_RANGE[1],
        help_text="A group is answered as soon as it holds this many messages (MAX_GROUP_MESSAGES).",
    )


class NewConversationDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="conversation_id")
    reply_rules = ReplyRulesSerializer(required=False, help_text="This conversation's own reply rules.")


class NewMessageDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="message_id")
    content = StrictCharField(min_length=1, max_length=MAX_CONTENT_LENGTH)
    conversation_id = StrictUUIDField()


class CloseConversationDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="conversation_id")


class AgentMessageDataSerializer(NewMessageDataSerializer):
    """An agent's message has a NEW_MESSAGE's shape."""


class ResumeBotDataSerializer(CloseConversationDataSerializer):
    """RESUME_BOT names its conversation, as CLOSE_CONVERSATION does."""


class PauseBotDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="conversation_id")
    seconds = StrictFloatField(
        required=False,
        default=None,
        min_value=PAUSE_SECONDS_RANGE[0],
        max_value=PAUSE_SECONDS_RANGE[1],
        help_text="How long a person has the conversation from now; BOT_PAUSE_SECONDS when left out.",
    )


class ConsoleEventSerializer(serializers.Serializer):
    """What the web console asks to send: an event type and its data (the webhook validates them as usual)."""

    type = serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES)
    data = serializers.DictField()


class MessageSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=Message.Type.choices)
    author = serializers.ChoiceField(
        choices=Message.Author.choices,
        help_text="user (INBOUND), bot (the service's replies) or agent (a person, AGENT_MESSAGE).",
    )
    content = serializers.CharField()
    timestamp = UTCDateTimeField(help_text="Event time (OUTBOUND: when it was generated).")
    received_at = UTCDateTimeField(help_text="Arrival time on the server (database clock).")
    pending = serializers.BooleanField(help_text="INBOUND still waiting for its reply.")
    reply_id = serializers.UUIDField(allow_null=True, help_text="The OUTBOUND that answered it.")
    handled_by = serializers.SerializerMethodField(
        help_text="INBOUND: bot once the service answered it, agent when a person has it (the service never will), "
        "null while it waits; null for OUTBOUND."
    )
    send_reason = serializers.SerializerMethodField(
        help_text="A reply of the bot: why it was sent (quiet, max_wait, max_messages, closed, handoff); null for "
        "INBOUND and for agents' messages."
    )
    due_at = UTCDateTimeField(
        allow_null=True,
        help_text="A reply of the bot: when its group fell due (its window ended, max_wait came, it filled up, it "
        "asked for a person, or the conversation closed); null otherwise.",
    )

    delivery = serializers.SerializerMethodField(
        help_text="OUTBOUND, when reply delivery is on: its delivery state; null otherwise."
    )

    @extend_schema_field(serializers.ChoiceField(choices=["bot", "agent"], allow_null=True))
    def get_handled_by(self, message: Message) -> str | None:
        if message.taken_over:
            return Message.Author.AGENT
        return Message.Author.BOT if message.reply_id else None

    @extend_schema_field(serializers.ChoiceField(choices=Message.SendReason.choices, allow_null=True))
    def get_send_reason(self, message: Message) -> str | None:
        return message.send_reason or None

    @extend_schema_field(DeliverySerializer(allow_null=True))
    def get_delivery(self, message: Message) -> dict | None:
        # An INBOUND is never asked: it has no delivery, and asking would cost a query (only replies are prefetched).
        if message.type != Message.Type.OUTBOUND:
            return None
        delivery = getattr(message, "delivery", None)
        return None if delivery is None else DeliverySerializer(delivery).data


class ReplyRulesOutSerializer(serializers.Serializer):
    window_seconds = serializers.FloatField(source="reply_window_seconds", allow_null=True)
    max_wait_seconds = serializers.FloatField(source="reply_max_wait_seconds", allow_null=True)
    max_messages = serializers.IntegerField(source="reply_max_messages", allow_null=True)


PAUSED_UNTIL_HELP = (
    "While in the future a person has the conversation and the service answers nothing; null when the bot answers."
)
REPLY_RULES_HELP = "Its own reply rules from NEW_CONVERSATION (a null one follows GET /api/config/); null if none."


class PausedUntilField(UTCDateTimeField):
    """bot_paused_until while it is in the future, else null: a pause that has ended by time shows as none."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", PAUSED_UNTIL_HELP)
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, until):
        return super().to_representation(until) if until > timezone.now() else None


@extend_schema_field(ReplyRulesOutSerializer(allow_null=True))
class ReplyRulesField(serializers.Field):
    """A conversation's own reply rules as an object, or null when it follows the service's."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", REPLY_RULES_HELP)
        kwargs.setdefault("source", "*")
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, conversation):
        # A dict, not ReplyRulesOutSerializer(...).data: building a serializer per conversation costs every
        # webhook answer a tenth of a millisecond (bench/webhook_bench.py).
        rules = {
            "window_seconds": conversation.reply_window_seconds,
            "max_wait_seconds": conversation.reply_max_wait_seconds,
            "max_messages": conversation.reply_max_messages,
        }
        return rules if any(value is not None for value in rules.values()) else None


class ConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Conversation.Status.choices)
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField(help_text="Last change: created, closed, a reply written, or a takeover.")
    closed_at = UTCDateTimeField(allow_null=True)
    bot_paused_until = PausedUntilField()
    reply_rules = ReplyRulesField()


class ConversationDetailSerializer(serializers.Serializer):
    """A ConversationDetail (chat.selectors): the conversation's fields, then its messages."""

    id = serializers.UUIDField(source="conversation.id")
    status = serializers.ChoiceField(source="conversation.status", choices=Conversation.Status.choices)
    created_at = UTCDateTimeField(source="conversation.created_at")
    updated_at = UTCDateTimeField(
        source="conversation.updated_at", help_text="Last change: created, closed, a reply written, or a takeover."
    )
    closed_at = UTCDateTimeField(source="conversation.closed_at", allow_null=True)
    bot_paused_until = PausedUntilField(source="conversation.bot_paused_until")
    reply_rules = ReplyRulesField(source="conversation")
    messages = MessageSerializer(
        many=True, help_text="Ordered by timestamp, then arrival: all of them, or the newest MESSAGES_PER_PAGE."
    )
    older = serializers.CharField(
        source="older_url", allow_null=True, help_text="Where the messages before these are; null when none."
    )


class ConversationListItemSerializer(ConversationSerializer):
    pending_count = serializers.IntegerField(help_text="INBOUND messages still waiting for a reply.")


class ConversationListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    q = serializers.CharField(
        required=False, max_length=36, help_text="The start of a conversation id: hex digits, dashes ignored."
    )

    def validate_q(self, value: str) -> str:
        try:
            uuid_prefix_range(value)
        except ValueError as exc:
            raise serializers.ValidationError("Not the start of a conversation id (hex digits, dashes).") from exc
        return value


class ServiceConfigSerializer(serializers.Serializer):
    """The timing rules in force (api.apis.service_config)."""

    group_window_seconds = serializers.FloatField()
    orphan_ttl_seconds = serializers.FloatField()
    sweep_interval_seconds = serializers.FloatField()
    max_group_wait_seconds = serializers.FloatField()
    max_group_messages = serializers.IntegerField()
    bot_pause_seconds = serializers.FloatField()


class MessageReceiptSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="message_id")
    conversation_id = serializers.UUIDField()
    outcome = serializers.ChoiceField(
        choices=[MessageReceipt.STORED, MessageReceipt.PARKED, MessageReceipt.DUPLICATE],
        help_text="stored: waiting for its group's reply; parked: its conversation is not known yet; "
        "duplicate: an exact redelivery, nothing changed.",
    )


# --- Shapes that exist for the OpenAPI schema: the full events, the receipt and the error body.
# What every event's schema shares; each one names its `type` and `data`. (A comment, not a docstring: the schema
# would give every event this description.)
class EventSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(help_text="Event time; naive means UTC. Stored, never used for windows.")


class NewConversationEventSerializer(EventSerializer):
    type = serializers.ChoiceField(choices=["NEW_CONVERSATION"])
    data = NewConversationDataSerializer()


class NewMessageEventSerializer(EventSerializer):
    type = serializers.ChoiceField(choices=["NEW_MESSAGE"])
    data = NewMessageDataSerializer()


class CloseConversationEventSerializer(EventSerializer):
    type = serializers.ChoiceField(choices=["CLOSE_CONVERSATION"])
    data = CloseConversationDataSerializer()


class AgentMessageEventSerializer(EventSerializer):
    type = serializers.ChoiceField(choices=["AGENT_MESSAGE"])
    data = AgentMessageDataSerializer()


class PauseBotEventSerializer(EventSerializer):
    type = serializers.ChoiceField(choices=["PAUSE_BOT"])
    timestamp = serializers.DateTimeField(
        help_text="Event time; naive means UTC. Not stored: the pause counts from now."
    )
    data = PauseBotDataSerializer()


class ResumeBotEventSerializer(EventSerializer):
    type = serializers.ChoiceField(choices=["RESUME_BOT"])
    timestamp = serializers.DateTimeField(help_text="Event time; naive means UTC. Not stored.")
    data = ResumeBotDataSerializer()


class ErrorSerializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=list(ERROR_CODES), help_text="Stable; see the list in the description.")
    detail = serializers.CharField(help_text="A sentence for people.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field problems only, by dotted path (e.g. `data.id`).",
    )


class ConversationPageSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ConversationListItemSerializer(many=True)
