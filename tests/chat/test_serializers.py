"""The serializers that skip DRF's per-instance deep copies must behave exactly as DRF's own do."""

import uuid
from datetime import timedelta

import pytest
from django.db.models import Count, Q
from rest_framework import serializers

from chat.models import Conversation, Message
from chat.serializers import (
    ConversationDetailSerializer,
    ConversationListItemSerializer,
    MessageReceiptSerializer,
    MessageSerializer,
    NewMessageDataSerializer,
    OutputSerializer,
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


def test_input_serializers_share_no_state_between_instances():
    conversation_id = uuid.uuid4()
    good = NewMessageDataSerializer(
        data={"id": str(uuid.uuid4()), "content": "Oi", "conversation_id": str(conversation_id)}
    )
    bad = NewMessageDataSerializer(data={"id": "nope", "content": 7})

    assert good.is_valid(), good.errors
    assert not bad.is_valid()

    assert good.validated_data["conversation_id"] == conversation_id
    assert set(bad.errors) == {"id", "content", "conversation_id"}
    assert good.fields["id"] is not bad.fields["id"]
    assert good.fields["id"].parent is good
    assert bad.fields["id"].parent is bad
    # The class's own fields are never bound: every instance binds its copies.
    for field in NewMessageDataSerializer._declared_fields.values():
        assert field.field_name is None
        assert field.parent is None
