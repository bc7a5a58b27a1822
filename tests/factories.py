import uuid
from datetime import UTC, datetime

import factory
from django.db import connection

from chat.models import Conversation, Message, ParkedMessage
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
    content = factory.Sequence(lambda n: f"message {n}")
    timestamp = EXAMPLE_TIME
    pending = True

    @factory.post_generation
    def reply_due(message, create, extracted, **kwargs):
        """A pending message brings its conversation's reply_due_at forward, as the webhook's insert (and a close)
        does."""
        if create and message.pending:
            rules = group_rules()
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    UPDATE chat_conversation c SET reply_due_at = least(c.reply_due_at, CASE
                        WHEN c.status = 'CLOSED'
                          OR (SELECT count(*) FROM chat_message p WHERE p.conversation_id = c.id AND p.pending) >= %s
                        THEN m.received_at ELSE m.received_at + %s END)
                    FROM chat_message m WHERE m.id = %s AND c.id = m.conversation_id
                    """,
                    [rules.max_messages, rules.first_due_after, message.id],
                )


class ParkedMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ParkedMessage

    id = factory.LazyFunction(uuid.uuid4)
    conversation_id = factory.LazyFunction(uuid.uuid4)
    content = factory.Sequence(lambda n: f"parked {n}")
    timestamp = EXAMPLE_TIME
