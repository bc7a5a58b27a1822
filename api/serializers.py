"""Shapes of the webhook events (input) and of conversations (output).

Serializers check shape only; the services enforce the rules.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.errors import ERROR_CODES
from chat.models import Conversation, Message
from core.serializer_fields import StrictCharField, StrictDateTimeField, StrictUUIDField, UTCDateTimeField
from core.uuid_prefix import uuid_prefix_range
from delivery.serializers import DeliverySerializer

MAX_CONTENT_LENGTH = 65536


class WebhookEnvelopeSerializer(serializers.Serializer):
    """The part every event shares: `{"type", "timestamp", "data"}`; unknown extra fields are ignored."""

    type = StrictCharField(max_length=64)
    timestamp = StrictDateTimeField(help_text="Event time (ISO-8601, naive means UTC). Stored, never used for windows.")
    data = serializers.DictField(help_text="The event's own fields; see each event type.")


class NewConversationDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="conversation_id")


class NewMessageDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="message_id")
    content = StrictCharField(min_length=1, max_length=MAX_CONTENT_LENGTH)
    conversation_id = StrictUUIDField()


class CloseConversationDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="conversation_id")


class ConsoleEventSerializer(serializers.Serializer):
    """What the web console asks to send: an event type and its data (the webhook validates them as usual)."""

    type = serializers.ChoiceField(choices=["NEW_CONVERSATION", "NEW_MESSAGE", "CLOSE_CONVERSATION"])
    data = serializers.DictField()


class MessageSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=Message.Type.choices)
    content = serializers.CharField()
    timestamp = UTCDateTimeField(help_text="Event time (OUTBOUND: when it was generated).")
    received_at = UTCDateTimeField(help_text="Arrival time on the server (database clock).")
    pending = serializers.BooleanField(help_text="INBOUND still waiting for its reply.")
    reply_id = serializers.UUIDField(allow_null=True, help_text="The OUTBOUND that answered it.")
    send_reason = serializers.SerializerMethodField(
        help_text="OUTBOUND: why it was sent (quiet, max_wait, max_messages, closed); null for INBOUND."
    )

    delivery = serializers.SerializerMethodField(
        help_text="OUTBOUND, when reply delivery is on: its delivery state; null otherwise."
    )

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


class ConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Conversation.Status.choices)
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField(help_text="Last change: created, closed, or a reply written.")
    closed_at = UTCDateTimeField(allow_null=True)


class ConversationDetailSerializer(serializers.Serializer):
    """A ConversationDetail (chat.selectors): the conversation's fields, then its messages."""

    id = serializers.UUIDField(source="conversation.id")
    status = serializers.ChoiceField(source="conversation.status", choices=Conversation.Status.choices)
    created_at = UTCDateTimeField(source="conversation.created_at")
    updated_at = UTCDateTimeField(
        source="conversation.updated_at", help_text="Last change: created, closed, or a reply written."
    )
    closed_at = UTCDateTimeField(source="conversation.closed_at", allow_null=True)
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
    """The timing rules in force, read from the settings of the same names."""

    group_window_seconds = serializers.FloatField(source="GROUP_WINDOW_SECONDS")
    orphan_ttl_seconds = serializers.FloatField(source="ORPHAN_TTL_SECONDS")
    sweep_interval_seconds = serializers.FloatField(source="SWEEP_INTERVAL_SECONDS")
    max_group_wait_seconds = serializers.FloatField(source="MAX_GROUP_WAIT_SECONDS")
    max_group_messages = serializers.IntegerField(source="MAX_GROUP_MESSAGES")


class MessageReceiptSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="message_id")
    conversation_id = serializers.UUIDField()
    outcome = serializers.ChoiceField(
        choices=["stored", "parked", "duplicate"],
        help_text="stored: waiting for its group's reply; parked: its conversation is not known yet; "
        "duplicate: an exact redelivery, nothing changed.",
    )


# --- Shapes that exist for the OpenAPI schema: the full events, the receipt and the error body.
class NewConversationEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["NEW_CONVERSATION"])
    timestamp = serializers.DateTimeField(help_text="Event time; naive means UTC. Stored, never used for windows.")
    data = NewConversationDataSerializer()


class NewMessageEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["NEW_MESSAGE"])
    timestamp = serializers.DateTimeField(help_text="Event time; naive means UTC. Stored, never used for windows.")
    data = NewMessageDataSerializer()


class CloseConversationEventSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["CLOSE_CONVERSATION"])
    timestamp = serializers.DateTimeField(help_text="Event time; naive means UTC. Stored, never used for windows.")
    data = CloseConversationDataSerializer()


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
