import uuid
from datetime import UTC, datetime

import factory

from chat.models import Conversation, Message, ParkedMessage
from chat.queries import conversations_due_from_pending
from chat.reply_timing import group_rules

EXAMPLE_TIME = datetime(2025, 6, 4, 14, 20, tzinfo=UTC)


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    id = factory.LazyFunction(uuid.uuid4)
    opened_event_at = EXAMPLE_TIME


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message
        skip_postgeneration_save = True

    id = factory.LazyFunction(uuid.uuid4)
    conversation = factory.SubFactory(ConversationFactory)
    type = Message.Type.INBOUND
    author = factory.LazyAttribute(
        lambda m: Message.Author.USER if m.type == Message.Type.INBOUND else Message.Author.BOT
    )
    content = factory.Sequence(lambda n: f"message {n}")
    timestamp = EXAMPLE_TIME
    pending = True

    @factory.post_generation
    def reply_due(message, create, extracted, **kwargs):
        """A pending message brings its conversation's reply_due_at forward, as attaching parked messages does."""
        if create and message.pending:
            conversations_due_from_pending([message.conversation_id], group_rules())


class ParkedMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ParkedMessage

    id = factory.LazyFunction(uuid.uuid4)
    conversation_id = factory.LazyFunction(uuid.uuid4)
    content = factory.Sequence(lambda n: f"parked {n}")
    timestamp = EXAMPLE_TIME
