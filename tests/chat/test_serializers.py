"""The serializers that skip DRF's per-instance copies of their fields must behave exactly as DRF's own do."""

import copy
import uuid
from datetime import timedelta

import pytest
from django.db.models import Count, Q
from rest_framework import serializers

from chat.models import Conversation, Message
from chat.serializers import (
    ConversationDetailSerializer,
    ConversationListItemSerializer,
    InputSerializer,
    MessageReceiptSerializer,
    MessageSerializer,
    NewMessageDataSerializer,
    OutputSerializer,
    WebhookEnvelopeSerializer,
)
from chat.services import MessageReceipt
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def drf_rendering(serializer_class: type[serializers.Serializer], instance) -> dict:
    """What DRF renders for this serializer when every field is deep-copied and bound."""
    return serializers.Serializer.to_representation(serializer_class(instance), instance)


def test_conversation_with_messages_renders_as_drf_does():
    conversation = ConversationFactory(status=Conversation.Status.CLOSED, closed_at=EXAMPLE_TIME)
    inbound = MessageFactory(conversation=conversation, timestamp=EXAMPLE_TIME, pending=False)
    reply = MessageFactory(
        conversation=conversation,
        type=Message.Type.OUTBOUND,
        timestamp=EXAMPLE_TIME + timedelta(seconds=5),
        pending=False,
    )
    Message.objects.filter(id=inbound.id).update(reply=reply)
    conversation = Conversation.objects.get(id=conversation.id)

    rendered = ConversationDetailSerializer(conversation).data

    assert rendered == drf_rendering(ConversationDetailSerializer, conversation)
    for message in conversation.message_list:
        assert MessageSerializer(message).data == drf_rendering(MessageSerializer, message)
    assert [m["id"] for m in rendered["messages"]] == [str(inbound.id), str(reply.id)]
    assert rendered["messages"][0]["reply_id"] == str(reply.id)
    assert rendered["closed_at"] == "2025-06-04T14:20:00Z"


def test_open_conversation_without_messages_renders_nulls_as_drf_does():
    conversation = ConversationFactory()

    rendered = ConversationDetailSerializer(conversation).data

    assert rendered == drf_rendering(ConversationDetailSerializer, conversation)
    assert rendered["closed_at"] is None
    assert rendered["messages"] == []


def test_list_item_and_receipt_render_as_drf_does():
    MessageFactory(conversation=ConversationFactory())
    item = Conversation.objects.annotate(
        message_count=Count("messages"), pending_count=Count("messages", filter=Q(messages__pending=True))
    ).get()
    receipt = MessageReceipt(uuid.uuid4(), uuid.uuid4(), MessageReceipt.PARKED)

    assert ConversationListItemSerializer(item).data == drf_rendering(ConversationListItemSerializer, item)
    assert MessageReceiptSerializer(receipt).data == drf_rendering(MessageReceiptSerializer, receipt)


def test_a_field_that_needs_binding_is_refused_when_the_class_is_defined():
    with pytest.raises(TypeError, match="reads one attribute of its own"):

        class Nested(OutputSerializer):  # noqa: F841 (defining the class is the test)
            author = serializers.CharField(source="conversation.id")


def drf_equivalent(serializer_class: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """A plain DRF serializer with the same fields, which DRF copies and binds for every instance."""
    fields = {name: copy.deepcopy(field) for name, field in serializer_class._declared_fields.items()}
    return type(f"Plain{serializer_class.__name__}", (serializers.Serializer,), fields)


INPUTS = {
    NewMessageDataSerializer: [
        {"id": str(uuid.UUID(int=1)), "content": "Oi", "conversation_id": str(uuid.UUID(int=2))},
        {"id": "nope", "content": 7},
        {"id": str(uuid.UUID(int=3)), "content": "", "conversation_id": 5},
        {"id": str(uuid.UUID(int=4)), "content": "x" * 65537, "conversation_id": str(uuid.UUID(int=5))},
        {"id": str(uuid.UUID(int=6)), "content": "a\x00b", "conversation_id": str(uuid.UUID(int=7))},
    ],
    WebhookEnvelopeSerializer: [
        {"type": "NEW_MESSAGE", "timestamp": "2025-06-04T14:20:00", "data": {"id": 1}},
        {"type": 5, "timestamp": "yesterday", "data": []},
        {"timestamp": "2025-06-04T14:20:00+03:00", "data": {}},
    ],
}


@pytest.mark.parametrize("serializer_class", list(INPUTS))
def test_input_serializers_validate_as_drf_does(serializer_class):
    plain = drf_equivalent(serializer_class)
    # Instances made one after another, validated in an interleaved order: shared fields must keep no state.
    ours = [serializer_class(data=data) for data in INPUTS[serializer_class]]
    theirs = [plain(data=data) for data in INPUTS[serializer_class]]

    for our, their in zip(ours + ours[::-1], theirs + theirs[::-1], strict=True):
        assert our.is_valid() == their.is_valid()
    for our, their in zip(ours, theirs, strict=True):
        assert our.errors == their.errors
        if not their.errors:
            assert our.validated_data == their.validated_data


def test_input_serializers_bind_their_fields_once_and_leave_the_declared_ones_alone():
    first, second = NewMessageDataSerializer(data={}), NewMessageDataSerializer(data={})

    assert first.fields["id"] is second.fields["id"]
    assert first.fields["id"].field_name == "id"
    assert first.fields["id"].source_attrs == ["message_id"]
    for field in NewMessageDataSerializer._declared_fields.values():
        assert field.field_name is None
        assert field.parent is None


def test_an_input_field_that_needs_its_parent_is_refused_when_the_class_is_defined():
    with pytest.raises(TypeError, match="cannot need its parent"):

        class Nested(InputSerializer):  # noqa: F841 (defining the class is the test)
            data = NewMessageDataSerializer()
