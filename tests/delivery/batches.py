"""Helpers of the delivery tests: due replies with their deliveries opened, one batch sent, wake-ups counted, a
reply's delivery row read, how soon it is due, made due now."""

from django.db import connection

from chat.models import Message
from delivery.models import ReplyDelivery
from delivery.services import deliveries_send
from tests.factories import MessageFactory
from tests.helpers import age_rows, replies_answer_due


class Wakes(list):
    """A stand-in for the delivery job's enqueue: counts the wake-ups asked for."""

    def __call__(self) -> None:
        self.append(None)


def replies_due(settings, capture, *, conversations: int = 1, messages: int = 2) -> list[Message]:
    """Due groups answered (one reply each, in conversation order), their deliveries opened; checks that the
    batch's commit woke a delivery job."""
    for _ in range(conversations):
        first = MessageFactory()
        group = [first, *(MessageFactory(conversation=first.conversation) for _ in range(messages - 1))]
        age_rows(Message, [m.id for m in group], settings.GROUP_WINDOW_SECONDS + 0.1)
    wakes = Wakes()
    with capture(execute=True):
        replies = replies_answer_due(wake_delivery=wakes)
    assert len(wakes) == 1
    due = dict(ReplyDelivery.objects.values_list("pk", "next_attempt_at"))
    # The order batches claim them in, and POST them in (due longest first, and here written first).
    return sorted(replies, key=lambda reply: (due[reply.pk], str(reply.pk)))


def send(wakes: Wakes | None = None):
    return deliveries_send(wake_next=wakes if wakes is not None else Wakes())


def delivery_of(reply: Message) -> ReplyDelivery:
    return ReplyDelivery.objects.get(pk=reply.pk)


def seconds_until_due(reply: Message) -> float:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT extract(epoch FROM next_attempt_at - clock_timestamp()) FROM delivery_replydelivery "
            "WHERE message_id = %s",
            [reply.pk],
        )
        return float(cursor.fetchone()[0])


def make_due(*replies: Message) -> None:
    ReplyDelivery.objects.filter(pk__in=[r.pk for r in replies]).update(next_attempt_at=replies[0].timestamp)
