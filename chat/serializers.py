"""Shapes of the webhook events (input) and of conversations (output).

Serializers check shape only; the services enforce the rules.
"""

import copy

from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

from chat.errors import ERROR_CODES
from chat.fields import StrictCharField, StrictDateTimeField, StrictObjectField, StrictUUIDField, UTCDateTimeField
from chat.models import Conversation, Message

MAX_CONTENT_LENGTH = 65536


class InputSerializer(serializers.Serializer):
    """A serializer whose fields are copied and bound once per class, not for every instance.

    DRF deep-copies and binds the declared fields of every serializer instance so that code may change them per
    instance; for a webhook request that costs more than validating the values. Validating a value changes no
    field, and the fields here read nothing through their parent (no context, no nested serializer: refused when
    the class is defined), so every instance validates with one set of fields bound to a blank instance of the
    class. What a validation produces (errors, validated data) lives on the instance, as in DRF.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, field in cls._declared_fields.items():
            if isinstance(field, serializers.BaseSerializer | serializers.SerializerMethodField):
                raise TypeError(f"{cls.__name__}.{name}: an InputSerializer field cannot need its parent.")
        cls._bound_fields = BindingDict(cls())
        for name, field in copy.deepcopy(cls._declared_fields).items():
            cls._bound_fields[name] = field

    @property
    def fields(self) -> BindingDict:
        return self._bound_fields


class WebhookEnvelopeSerializer(InputSerializer):
    """The part every event shares: `{"type", "timestamp", "data"}`; unknown extra fields are ignored."""

    type = StrictCharField(max_length=64)
    timestamp = StrictDateTimeField(help_text="Event time (ISO-8601, naive means UTC). Stored, never used for windows.")
    data = StrictObjectField()


class NewConversationDataSerializer(InputSerializer):
    id = StrictUUIDField(source="conversation_id")


class NewMessageDataSerializer(InputSerializer):
    id = StrictUUIDField(source="message_id")
    content = StrictCharField(min_length=1, max_length=MAX_CONTENT_LENGTH)
    conversation_id = StrictUUIDField()


class CloseConversationDataSerializer(InputSerializer):
    id = StrictUUIDField(source="conversation_id")


class OutputSerializer(serializers.Serializer):
    """A read-only serializer that renders with its class's declared fields.

    DRF deep-copies every declared field each time a serializer renders (`Serializer.fields`): 13 field
    constructions for a conversation, more than half of what serializers cost a webhook request. Output fields
    keep no state while rendering, and the ones here need no binding (no context, no method fields), so the
    class's own field objects render every instance. The declared fields stay the contract (and the OpenAPI
    schema); tests/chat/test_serializers.py checks this gives what DRF's generic rendering gives.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, field in cls._declared_fields.items():
            source = field.source or name
            if isinstance(field, serializers.SerializerMethodField) or "." in source or source == "*":
                raise TypeError(f"{cls.__name__}.{name}: an OutputSerializer field reads one attribute of its own.")

    def to_representation(self, instance) -> dict:
        representation = {}
        for name, field in self._declared_fields.items():
            value = getattr(instance, field.source or name)
            representation[name] = None if value is None else field.to_representation(value)
        return representation


class MessageSerializer(OutputSerializer):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=Message.Type.choices)
    content = serializers.CharField()
    timestamp = UTCDateTimeField(help_text="Event time (OUTBOUND: when it was generated).")
    received_at = UTCDateTimeField(help_text="Arrival time on the server (database clock).")
    pending = serializers.BooleanField(help_text="INBOUND still waiting for its reply.")
    reply_id = serializers.UUIDField(allow_null=True, help_text="The OUTBOUND that answered it.")


class ConversationSerializer(OutputSerializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Conversation.Status.choices)
    created_at = UTCDateTimeField()
    updated_at = UTCDateTimeField(help_text="Last change: created, closed, or a reply written.")
    closed_at = UTCDateTimeField(allow_null=True)


class ConversationDetailSerializer(ConversationSerializer):
    messages = MessageSerializer(many=True, source="message_list", help_text="Ordered by timestamp, then arrival.")


class ConversationListItemSerializer(ConversationSerializer):
    message_count = serializers.IntegerField()
    pending_count = serializers.IntegerField(help_text="INBOUND messages still waiting for a reply.")


class ConversationListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
    q = serializers.RegexField(
        r"^[0-9a-fA-F-]{1,36}$", required=False, help_text="The start of a conversation id (hex digits and dashes)."
    )


class MessageReceiptSerializer(OutputSerializer):
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
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ConversationListItemSerializer(many=True)
