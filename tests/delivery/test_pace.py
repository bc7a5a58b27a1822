"""REPLY_WEBHOOK_RATE (delivery.pace): POST slots booked on the receiver's row, shared by every delivery process,
against a real receiver and the real PostgreSQL."""

import math
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.utils import timezone

from delivery.models import DeliveryAttempt, ReceiverCircuit, ReplyDelivery
from delivery.pace import BOOK_AHEAD_SECONDS
from delivery.queries import deliveries_due
from delivery.services import SEND_WINDOW_SECONDS
from tests.delivery.batches import replies_due, send
from tests.factories import MessageFactory
from tests.helpers import run_in_parallel

pytestmark = pytest.mark.django_db


def most_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))


@pytest.mark.django_db(transaction=True)
def test_parallel_delivery_processes_share_the_rate(delivery_on, receiver, django_capture_on_commit_callbacks):
    delivery_on.REPLY_WEBHOOK_RATE = 20.0
    delivery_on.REPLY_DELIVERY_BATCH = 5  # many batches, so every process takes some
    replies = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=40, messages=1)

    def process() -> int:
        """A delivery process: batches until nothing is left, as the periodic step would wake it."""
        sent = 0
        while ReplyDelivery.objects.filter(state="pending").exists():
            sent += send().claimed
            time.sleep(0.05)
        return sent

    sent = run_in_parallel(process, 3)

    assert sum(sent) == 40
    assert sum(1 for count in sent if count) >= 2
    assert sorted(receiver.ids()) == sorted(str(reply.id) for reply in replies)
    times = [request.at for request in receiver.received]
    # Never above the rate, whichever process POSTed (a second holds 20 slots, and its edges may catch one more).
    assert most_in_any_second(times) <= 21
    assert ReplyDelivery.objects.filter(attempts=1).count() == 40  # every reply posted once, on its first attempt


def test_a_batch_claims_only_the_slots_of_its_send_window_and_waiting_costs_no_attempt(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    delivery_on.REPLY_WEBHOOK_RATE = 4.0
    replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=20, messages=1)
    fits = math.floor(4.0 * SEND_WINDOW_SECONDS)

    first = send()
    # Another process's batch has booked the slots further ahead than BOOK_AHEAD_SECONDS meanwhile.
    ReceiverCircuit.objects.update_or_create(
        id=1, defaults={"paced_until": timezone.now() + timedelta(seconds=BOOK_AHEAD_SECONDS + 1)}
    )
    second = send()

    assert (first.claimed, second.claimed) == (fits, 0)
    assert first.outcomes["delivered"] == fits
    # When each POST started (its slot, give or take the event loop's wake-up: milliseconds, more under load), not
    # when it arrived. A slot every 0.25 s: never more than the rate in a second, spread over the whole window.
    times = sorted(start.timestamp() for start in DeliveryAttempt.objects.values_list("started_at", flat=True))
    assert most_in_any_second(times) <= 4 + 1  # a second's edges may catch one more
    assert times[-1] - times[0] >= (fits - 1) * 0.25 - 0.1
    waiting = ReplyDelivery.objects.filter(state="pending")
    assert waiting.count() == 20 - fits
    assert set(waiting.values_list("attempts", flat=True)) == {0}


def test_the_periodic_step_wakes_no_job_while_the_slots_are_booked_far_ahead(delivery_on):
    delivery_on.REPLY_WEBHOOK_RATE = 10.0
    reply = MessageFactory()
    ReplyDelivery.objects.create(message=reply, give_up_at=timezone.now() + timedelta(hours=1))

    ReceiverCircuit.objects.update_or_create(
        id=1, defaults={"paced_until": timezone.now() + timedelta(seconds=BOOK_AHEAD_SECONDS + 2)}
    )
    assert deliveries_due(book_ahead=BOOK_AHEAD_SECONDS) is False
    ReceiverCircuit.objects.filter(id=1).update(paced_until=timezone.now() + timedelta(seconds=BOOK_AHEAD_SECONDS - 1))
    assert deliveries_due(book_ahead=BOOK_AHEAD_SECONDS) is True


def test_without_a_rate_nothing_is_booked(delivery_on, receiver, django_capture_on_commit_callbacks):
    replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=30, messages=1)

    assert send().claimed == 30
    assert ReceiverCircuit.objects.get(id=1).paced_until is None


@pytest.mark.parametrize("rate", [0.0, -5.0, float("nan"), float("inf")])
def test_a_rate_that_cannot_work_stops_the_start(settings, rate):
    settings.REPLY_WEBHOOK_URL = "http://127.0.0.1:9/replies"
    settings.REPLY_WEBHOOK_RATE = rate

    with pytest.raises(SystemCheckError, match="delivery.E005"):
        call_command("check")
