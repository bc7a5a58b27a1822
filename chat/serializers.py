"""Shapes of the webhook events (input) and of conversations (output).

Serializers check shape only; the services enforce the rules.
"""

from rest_framework import serializers

from chat.fields import StrictCharField, StrictDateTimeField, StrictUUIDField
from chat.models import Conversation, Message

MAX_CONTENT_LENGTH = 65536


class WebhookEnvelopeSerializer(serializers.Serializer):
    """The part every event shares: `{"type", "timestamp", "data"}`; unknown extra fields are ignored."""

    type = StrictCharField(max_length=64)
    timestamp = StrictDateTimeField(help_text="Event time (ISO-8601, naive means UTC). Stored, never used for windows.")
    data = serializers.DictField()


class NewConversationDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="conversation_id")


class NewMessageDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="message_id")
    content = StrictCharField(min_length=1, max_length=MAX_CONTENT_LENGTH)
    conversation_id = StrictUUIDField()


class CloseConversationDataSerializer(serializers.Serializer):
    id = StrictUUIDField(source="conversation_id")


class MessageSerializer(serializers.ModelSerializer):
    reply_id = serializers.UUIDField(read_only=True, allow_null=True, help_text="The OUTBOUND that answered it.")

    class Meta:
        model = Message
        fields = ["id", "type", "content", "timestamp", "received_at", "pending", "reply_id"]


class ConversationDetailSerializer(serializers.ModelSerializer):
    messages = MessageSerializer(many=True, read_only=True)

    class Meta:
        model = Conversation
        fields = ["id", "status", "created_at", "updated_at", "closed_at", "messages"]


class ConversationListItemSerializer(serializers.ModelSerializer):
    message_count = serializers.IntegerField(read_only=True)
    pending_count = serializers.IntegerField(read_only=True, help_text="INBOUND messages still waiting for a reply.")

    class Meta:
        model = Conversation
        fields = ["id", "status", "created_at", "updated_at", "closed_at", "message_count", "pending_count"]


class ConversationListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)


class MessageReceiptSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="message_id")
    conversation_id = serializers.UUIDField()
    outcome = serializers.ChoiceField(
        choices=["stored", "parked", "duplicate"],
        help_text="stored: waiting for its group's reply; parked: its conversation is not known yet; "
        "duplicate: an exact redelivery, nothing changed.",
    )
