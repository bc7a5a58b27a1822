"""The delivery client (delivery.client): what it reads of an answer, its window of POSTs in flight, a
conversation's order, Retry-After; against a real HTTP receiver on 127.0.0.1."""

import asyncio

import pytest

from chat.models import Message
from delivery.client import ReceiverAnswer, Window, retry_after_seconds
from tests.delivery.batches import Wakes, delivery_of, replies_due, send
from tests.factories import MessageFactory
from tests.helpers import age_rows, replies_answer_due, wait_until

pytestmark = pytest.mark.django_db


def test_only_the_head_of_a_huge_answer_is_read(delivery_on, receiver, django_capture_on_commit_callbacks):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(503, {}, "é".encode() * 50_000_000)]  # 100 MB, far beyond the socket buffers

    assert send().outcomes["retry"] == 1

    assert delivery_of(reply).last_error == "HTTP 503: " + "é" * 200
    wait_until(lambda: receiver.answers_cut_short == 1, timeout=5, what="the sender hung up instead of reading 100 MB")


def test_an_answer_whose_body_does_not_decode_is_still_read_for_its_status(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(502, {"Content-Encoding": "gzip"}, b"not gzip at all")]

    assert send().outcomes["retry"] == 1
    assert delivery_of(reply).last_error == "HTTP 502: "


def test_a_conversations_replies_go_in_order_while_other_conversations_go_alongside(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    first, other = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=2, messages=1)
    later = MessageFactory(conversation=first.conversation)
    age_rows(Message, [later.id], delivery_on.GROUP_WINDOW_SECONDS + 0.1)
    with django_capture_on_commit_callbacks(execute=True):
        [second] = replies_answer_due(first.conversation_id, wake_delivery=Wakes())
    receiver.script(first.conversation_id, [200, 200], hold=0.5)

    assert send().outcomes["delivered"] == 3

    requests = receiver.received_for(first.conversation_id)
    assert [r.json["data"]["id"] for r in requests] == [str(first.id), str(second.id)]
    # The second waited for the first's answer; the other conversation did not wait for either.
    assert requests[1].at - requests[0].at >= 0.5
    [alongside] = receiver.received_for(other.conversation_id)
    assert alongside.at < requests[0].at + 0.5


def test_a_batch_widens_to_its_concurrency_as_posts_are_delivered(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    delivery_on.REPLY_WEBHOOK_CONCURRENCY = 6
    replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=20, messages=1)
    receiver.hold = 0.2

    assert send().outcomes["delivered"] == 20

    # Three at first (CIRCUIT_FAILURES), one more for each answer, up to six.
    assert receiver.most_in_flight == 6
    starts = sorted(request.at for request in receiver.received)
    assert starts[3] - starts[0] >= 0.2  # the fourth waited for a first answer


def test_the_window_narrows_on_receiver_failures_to_one_and_widens_on_any_other_answer():
    failure, delivered, refused = ReceiverAnswer(False, True), ReceiverAnswer(True, False), ReceiverAnswer(False, False)
    window = Window(opening=3, ceiling=4)
    sizes = []
    for answer in [failure, failure, failure, failure, refused, delivered, delivered, delivered, delivered]:
        window.answered(answer)
        sizes.append(window.size)
    assert sizes == [2, 1, 1, 1, 2, 3, 4, 4, 4]


def test_the_windows_free_slots_follow_its_size():
    failure, delivered = ReceiverAnswer(False, True), ReceiverAnswer(True, False)

    async def scenario() -> list[int]:
        window = Window(opening=3, ceiling=4)
        free = []
        for answer in [failure, failure, failure, delivered, delivered, delivered]:
            await window.slots.acquire()  # a POST starts ...
            window.answered(answer)  # ... and is answered
            taken = 0
            while not window.slots.locked():
                await window.slots.acquire()
                taken += 1
            for _ in range(taken):
                window.slots.release()
            free.append(taken)
        return free

    # Nothing in flight after each answer: every slot of the window's size is free, never more, never none.
    assert asyncio.run(scenario()) == [2, 1, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        (None, None),
        ("soon", None),
        ("-3", None),
        ("²", None),
        ("9" * 20, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(value, seconds):
    assert retry_after_seconds(value) == seconds
