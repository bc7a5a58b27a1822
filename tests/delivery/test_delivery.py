"""Reply delivery against a real HTTP receiver on 127.0.0.1 and the real PostgreSQL (delivery.services): batches
claimed, POSTed concurrently and settled, retries scheduled in the rows, the receiver's circuit breaker."""

import asyncio
import hashlib
import hmac
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from chat.erasure import conversations_erase
from chat.models import Message
from delivery import circuit
from delivery.circuit import Admission, circuit_pass
from delivery.client import ReceiverAnswer, Window, retry_after_seconds
from delivery.models import DeliveryAttempt, ReceiverCircuit, ReplyDelivery
from delivery.queries import deliveries_claim, deliveries_due
from delivery.selectors import ATTEMPT_LOG_SHOWN, receiver_state
from delivery.services import (
    claim_seconds,
    deliveries_retry,
    deliveries_wake_due,
    receiver_enable,
    time_limits,
)
from tests.delivery.batches import Wakes, replies_due, send
from tests.delivery.conftest import SECRET
from tests.e2e.stack import free_port
from tests.factories import MessageFactory
from tests.helpers import age_rows, metric_samples, replies_answer_due, run_in_parallel, wait_until

pytestmark = pytest.mark.django_db


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


def test_no_delivery_is_recorded_while_reply_webhook_url_is_empty(settings, django_capture_on_commit_callbacks):
    settings.REPLY_WEBHOOK_URL = ""
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)
    wakes = Wakes()
    with django_capture_on_commit_callbacks(execute=True):
        replies_answer_due(message.conversation_id, wake_delivery=wakes)
    assert (wakes, ReplyDelivery.objects.count()) == ([], 0)


def test_a_reply_is_posted_once_signed_with_its_id_as_idempotency_key(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)

    result = send()

    assert (result.admission, result.claimed, result.outcomes["delivered"]) == (Admission.BATCH, 1, 1)
    [request] = receiver.received
    expected_signature = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Hub-Signature-256"] == expected_signature
    assert request.headers["Idempotency-Key"] == str(reply.id)
    assert request.headers["X-Delivery-Attempt"] == "1"
    assert request.headers["Content-Type"] == "application/json"
    answers = [
        str(m)
        for m in Message.objects.filter(reply=reply)
        .order_by("timestamp", "received_at", "id")
        .values_list("id", flat=True)
    ]
    assert request.json == {
        "type": "OUTBOUND_MESSAGE",
        "timestamp": reply.timestamp.isoformat().replace("+00:00", "Z"),
        "data": {
            "id": str(reply.id),
            "conversation_id": str(reply.conversation_id),
            "content": reply.content,
            "answers": answers,
        },
    }
    assert len(answers) == 2
    delivery = delivery_of(reply)
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("delivered", 1, "")
    assert delivery.delivered_at is not None
    assert (delivery.claim_token, delivery.next_attempt_at) == (None, None)
    assert send().claimed == 0  # settled: the next job finds nothing
    assert len(receiver.received) == 1


def test_a_job_left_from_before_the_url_was_emptied_waits_for_one(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    delivery_on.REPLY_WEBHOOK_URL = ""

    assert send().claimed == 0
    assert (delivery_of(reply).state, delivery_of(reply).attempts, receiver.received) == ("pending", 0, [])
    delivery_on.REPLY_WEBHOOK_URL = receiver.url
    assert send().outcomes["delivered"] == 1


def test_a_batch_with_mixed_outcomes_settles_each_on_its_own(delivery_on, receiver, django_capture_on_commit_callbacks):
    replies = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=4, messages=1)
    ok, server_error, client_error, silent = replies
    receiver.script(server_error.conversation_id, [500])
    receiver.script(client_error.conversation_id, [400])
    receiver.script(silent.conversation_id, [200], hold=delivery_on.REPLY_WEBHOOK_TIMEOUT_SECONDS + 0.5)

    result = send()

    assert (result.claimed, dict(result.outcomes)) == (4, {"delivered": 1, "retry": 2, "failed": 1})
    assert delivery_of(ok).state == "delivered"
    for retried, error in [(server_error, "HTTP 500: ok"), (silent, "no answer within 1 s")]:
        delivery = delivery_of(retried)
        assert (delivery.state, delivery.attempts, delivery.last_error) == ("pending", 1, error)
        assert seconds_until_due(retried) <= delivery_on.REPLY_DELIVERY_BACKOFF_SECONDS  # full jitter: 0 s or more
    failed = delivery_of(client_error)
    assert (failed.state, failed.last_error, failed.next_attempt_at) == ("failed", "HTTP 400: ok", None)
    assert sorted(receiver.ids()) == sorted(str(reply.id) for reply in replies)

    make_due(server_error, silent)
    assert send().outcomes["delivered"] == 2
    assert delivery_of(server_error).attempts == delivery_of(silent).attempts == 2
    assert receiver.received_for(silent.conversation_id)[-1].headers["X-Delivery-Attempt"] == "2"


@pytest.mark.parametrize("answer", [500, 503, 408, 429], ids=["500", "503", "408", "429"])
def test_a_retryable_answer_is_due_again_within_its_backoff(
    delivery_on, receiver, django_capture_on_commit_callbacks, answer
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [answer]

    assert send().outcomes["retry"] == 1

    delivery = delivery_of(reply)
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("pending", 1, f"HTTP {answer}: ok")
    assert seconds_until_due(reply) <= delivery_on.REPLY_DELIVERY_BACKOFF_SECONDS  # full jitter: from 0 s up
    make_due(reply)
    assert send().outcomes["delivered"] == 1
    assert len(receiver.received) == 2


@pytest.mark.parametrize("answer", [400, 401, 404, 301])
def test_other_answers_fail_at_once_without_retry(delivery_on, receiver, django_capture_on_commit_callbacks, answer):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(answer, {"Location": "/elsewhere"})]

    assert send().outcomes["failed"] == 1

    delivery = delivery_of(reply)
    assert delivery.state == "failed"
    assert delivery.last_error.startswith(f"HTTP {answer}: ok")
    assert delivery.next_attempt_at is None
    if answer == 301:
        assert delivery.last_error.endswith("(to /elsewhere; redirects are not followed)")


def test_a_connection_refused_and_a_timeout_are_retried(delivery_on, receiver, django_capture_on_commit_callbacks):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.stop()
    assert send().outcomes["retry"] == 1
    assert "ClientConnectorError" in delivery_of(reply).last_error

    receiver.start()
    receiver.hold = delivery_on.REPLY_WEBHOOK_TIMEOUT_SECONDS + 0.5
    make_due(reply)
    assert send().outcomes["retry"] == 1
    assert delivery_of(reply).last_error == "no answer within 1 s"
    assert delivery_of(reply).attempts == 2


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


def test_retry_after_is_honoured_when_longer_than_the_backoff(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(429, {"Retry-After": "3"}), (503, {"Retry-After": "100"})]

    send()
    assert 2.5 < seconds_until_due(reply) <= 3

    make_due(reply)
    send()
    # Longer than the backoff's cap, and still honoured: the row waits, no job does.
    assert 99.5 < seconds_until_due(reply) <= 100
    assert send().claimed == 0


def test_an_answer_with_nul_characters_or_a_huge_retry_after_is_settled_like_any_other(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    nul, far = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=2, messages=1)
    receiver.script(nul.conversation_id, [(503, {}, b"a\x00b")])
    receiver.script(far.conversation_id, [(429, {"Retry-After": "9" * 20})])

    assert send().outcomes["retry"] == 2

    assert delivery_of(nul).last_error == "HTTP 503: ab"
    assert seconds_until_due(far) <= delivery_on.REPLY_DELIVERY_BACKOFF_SECONDS  # unreadable: the backoff


def test_retries_stop_at_give_up_at_and_the_delivery_fails(delivery_on, receiver, django_capture_on_commit_callbacks):
    delivery_on.REPLY_DELIVERY_MAX_SECONDS = 0
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(503, {"Retry-After": "1"})]

    assert send().outcomes["failed"] == 1
    assert delivery_of(reply).last_error == "HTTP 503: ok (gave up: past give_up_at)"


def test_the_sweep_fails_deliveries_held_past_give_up_at_and_wakes_a_job_only_when_one_is_due(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    held, due, later = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=3, messages=1)
    ReplyDelivery.objects.filter(pk=held.pk).update(give_up_at=held.timestamp, last_error="HTTP 503: ok")
    ReplyDelivery.objects.filter(pk=later.pk).update(next_attempt_at=later.timestamp + timedelta(days=1))
    wakes = Wakes()

    assert deliveries_wake_due(wake=wakes) == 1

    assert (delivery_of(held).state, delivery_of(held).last_error) == (
        "failed",
        "HTTP 503: ok (gave up: past give_up_at)",
    )
    assert len(wakes) == 1
    send()
    assert receiver.ids() == [str(due.id)]
    assert deliveries_wake_due(wake=wakes) == 0
    assert len(wakes) == 1  # only `later` is pending, and not due


def test_a_batch_holds_its_rows_past_its_jobs_hard_time_limit_then_they_are_due_again(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    [claimed] = deliveries_claim(token=uuid.uuid4(), limit=10, claim_seconds=claim_seconds())  # then the batch dies

    assert claimed.attempt == 1
    assert time_limits()[1] < seconds_until_due(reply) <= time_limits()[1] + 1
    assert send().claimed == 0
    make_due(reply)  # the claim ran out
    assert send().outcomes["delivered"] == 1
    assert receiver.received[0].headers["X-Delivery-Attempt"] == "2"


def test_a_batch_out_of_time_starts_no_more_posts_and_gives_their_attempts_back(
    delivery_on, receiver, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("delivery.services.SEND_WINDOW_SECONDS", 1)
    delivery_on.REPLY_WEBHOOK_CONCURRENCY = 1
    replies = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=4, messages=1)
    receiver.hold = 0.6

    result = send()

    assert dict(result.outcomes) == {"delivered": 2, "unsent": 2}
    assert [(delivery_of(r).state, delivery_of(r).attempts) for r in replies[2:]] == [("pending", 0)] * 2
    assert all(seconds_until_due(reply) <= 0 for reply in replies[2:])


def test_a_full_batch_wakes_the_next_one_at_once(delivery_on, receiver, django_capture_on_commit_callbacks):
    delivery_on.REPLY_DELIVERY_BATCH = 2
    replies = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=3, messages=1)
    wakes = Wakes()

    assert send(wakes).claimed == 2
    assert len(wakes) == 1
    assert send(wakes).claimed == 1
    assert len(wakes) == 1  # not full: the backlog is done
    # Due longest first.
    ids = receiver.ids()
    assert (set(ids[:2]), ids[2:]) == ({str(reply.id) for reply in replies[:2]}, [str(replies[2].id)])


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


def test_failures_in_a_row_open_the_circuit_and_stop_the_batch(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    replies = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=5, messages=1)
    receiver.default = 503

    result = send()

    # Sixteen may be in flight (REPLY_WEBHOOK_CONCURRENCY), but a batch opens with three (CIRCUIT_FAILURES),
    # each failure takes a slot away, and after three it starts no more POSTs. The two left keep their attempt.
    assert dict(result.outcomes) == {"retry": 3, "unsent": 2}
    assert len(receiver.received) == 3
    unsent = [delivery_of(reply) for reply in replies[3:]]
    assert [(d.state, d.attempts, d.last_error) for d in unsent] == [("pending", 0, "")] * 2
    assert all(seconds_until_due(reply) <= 0 for reply in replies[3:])
    circuit = ReceiverCircuit.objects.get()
    assert (circuit.failures, circuit.opened_at is not None, circuit.last_error) == (3, True, "HTTP 503: ok")

    make_due(*replies)
    refused = send()
    assert (refused.admission, refused.claimed, len(receiver.received)) == (Admission.NONE, 0, 3)


def test_an_open_circuit_sends_one_probe_per_interval_and_a_answered_probe_closes_it(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    replies = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=4, messages=1)
    receiver.default = 503
    send()
    assert ReceiverCircuit.objects.get().opened_at is not None
    ReceiverCircuit.objects.update(probe_at=replies[0].timestamp)  # the probe is due
    make_due(*replies)

    probe = send()
    assert (probe.admission, probe.claimed, probe.outcomes["retry"]) == (Admission.PROBE, 1, 1)
    # A failed probe stays due (the circuit sets the pace, not its backoff), and the next probe waits its interval.
    first_probe = receiver.ids()[-1]
    assert all(seconds_until_due(reply) <= 0 for reply in replies)
    assert send().admission is Admission.NONE
    # The next probe takes another reply: the failed one went behind those that waited longer.
    ReceiverCircuit.objects.update(probe_at=replies[0].timestamp)
    assert send().admission is Admission.PROBE
    assert receiver.ids()[-1] != first_probe

    receiver.default = 200
    ReceiverCircuit.objects.update(probe_at=replies[0].timestamp)
    wakes = Wakes()
    closing = send(wakes)
    assert (closing.admission, closing.outcomes["delivered"]) == (Admission.PROBE, 1)
    assert len(wakes) == 1  # the backlog goes out at once
    circuit = ReceiverCircuit.objects.get()
    assert (circuit.opened_at, circuit.probe_at, circuit.failures) == (None, None, 0)
    assert send().outcomes["delivered"] == 3


def test_a_client_error_neither_opens_the_circuit_nor_counts_towards_it(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    replies = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=5, messages=1)
    receiver.answers = [503, 503, 400, 503, 503]
    delivery_on.REPLY_WEBHOOK_CONCURRENCY = 1

    result = send()

    assert dict(result.outcomes) == {"retry": 4, "failed": 1}
    circuit = ReceiverCircuit.objects.get()
    assert (circuit.failures, circuit.opened_at) == (2, None)
    assert len(receiver.ids()) == len(replies)


def test_an_operator_retry_restarts_failed_deliveries_and_leaves_delivered_ones(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    failed, delivered = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=2, messages=1)
    receiver.script(failed.conversation_id, [400])
    send()

    wakes = Wakes()
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_retry([failed.id, delivered.id], wake=wakes) == 1

    assert len(wakes) == 1
    assert (delivery_of(failed).state, delivery_of(failed).last_error) == ("pending", "HTTP 400: ok")
    assert send().outcomes["delivered"] == 1
    assert (delivery_of(failed).attempts, delivery_of(delivered).attempts) == (2, 1)


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


@pytest.mark.django_db(transaction=True)
def test_only_one_of_many_delivery_processes_takes_a_due_probe(delivery_on):
    ReceiverCircuit.objects.update_or_create(
        id=1, defaults={"failures": 3, "opened_at": timezone.now(), "probe_at": timezone.now()}
    )

    passes = run_in_parallel(lambda: circuit_pass().admission, 6)

    assert sorted(admission.value for admission in passes) == ["none"] * 5 + ["probe"]


@pytest.mark.django_db(transaction=True)
def test_parallel_batches_post_each_reply_once(delivery_on, receiver, django_capture_on_commit_callbacks):
    delivery_on.REPLY_DELIVERY_BATCH = 3
    replies = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=12, messages=1)
    receiver.hold = 0.2  # the batches overlap

    claimed = run_in_parallel(lambda: send().claimed, 6)

    # Disjoint claims of at most a batch each, together every reply once. Not always four full batches: two claims
    # that scan the last rows at the same instant split them (SKIP LOCKED passes over the rows the other has just
    # locked), which CI's parallel load showed once.
    assert sum(claimed) == 12
    assert max(claimed) <= 3
    assert sorted(receiver.ids()) == sorted(str(reply.id) for reply in replies)


@pytest.mark.django_db(transaction=True)
def test_a_batch_that_outlived_its_claim_records_only_a_success(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    delivered, failed = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=2, messages=1)
    receiver.script(failed.conversation_id, [400], hold=0.5)
    receiver.script(delivered.conversation_id, [200], hold=0.5)

    def operator_retry_meanwhile():
        # While the batch waits on the receiver, its claim passes (the operator's retry takes the rows back).
        wait_until(lambda: len(receiver.received) == 2, 5, 0.01, "both POSTs in flight")
        try:
            deliveries_retry([delivered.id, failed.id], wake=Wakes())
        finally:
            connection.close()

    thread = threading.Thread(target=operator_retry_meanwhile)
    thread.start()
    send()
    thread.join()

    assert delivery_of(delivered).state == "delivered"
    assert (delivery_of(failed).state, delivery_of(failed).claim_token) == ("pending", None)


def test_the_conversation_api_shows_each_reply_delivery_state(
    delivery_on, receiver, api, django_capture_on_commit_callbacks, django_assert_num_queries
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks, messages=3)
    receiver.answers = [500]
    send()

    with django_assert_num_queries(4):  # conversation, messages, their replies' deliveries, their attempts
        messages = api.get(f"/conversations/{reply.conversation_id}/").json()["messages"]

    by_type = {}
    for message in messages:
        by_type.setdefault(message["type"], []).append(message["delivery"])
    assert by_type["INBOUND"] == [None, None, None]
    [delivery] = by_type["OUTBOUND"]
    log = delivery.pop("log")
    assert delivery == {"state": "pending", "attempts": 1, "last_error": "HTTP 500: ok", "delivered_at": None}
    [attempt] = log
    assert (attempt["number"], attempt["status"], attempt["outcome"], attempt["error"]) == (
        1,
        500,
        "retry",
        "HTTP 500: ok",
    )
    assert attempt["duration_ms"] >= 0


def test_the_admin_retry_action_restarts_a_failed_delivery_and_the_list_shows_an_open_circuit(
    delivery_on, receiver, client, admin_user, django_capture_on_commit_callbacks
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [400]
    send()
    client.force_login(admin_user)

    response = client.post(
        "/admin/delivery/replydelivery/",
        {"action": "retry_delivery", "_selected_action": [str(reply.id)]},
        follow=True,
    )

    assert "1 delivery(ies) started again." in response.content.decode()
    delivery = delivery_of(reply)
    assert (delivery.state, seconds_until_due(reply) <= 0) == ("pending", True)
    assert "circuit is open" not in response.content.decode()
    ReceiverCircuit.objects.update_or_create(
        id=1, defaults={"opened_at": reply.timestamp, "last_error": "HTTP 503: down"}
    )
    page = client.get("/admin/delivery/replydelivery/").content.decode()
    assert "The receiver&#x27;s circuit is open since" in page
    assert "HTTP 503: down" in page
    assert client.get("/admin/delivery/receivercircuit/").status_code == 200


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


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http://"])
def test_a_reply_webhook_url_that_cannot_work_stops_the_start(settings, url):
    settings.REPLY_WEBHOOK_URL = url
    with pytest.raises(SystemCheckError, match="delivery.E001"):
        call_command("check")


@pytest.fixture
def example_receiver():
    """scripts/reply_receiver.py, the receiver INSTRUCTIONS.md shows, as a real process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "scripts/reply_receiver.py", "--port", str(port), "--bind", "127.0.0.1", "--secret", SECRET],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().startswith("listening")
    yield f"http://127.0.0.1:{port}/replies", process
    process.kill()
    process.wait()


def test_the_documented_example_receiver_accepts_a_signed_reply_and_refuses_a_forged_one(
    delivery_on, example_receiver, django_capture_on_commit_callbacks
):
    url, process = example_receiver
    delivery_on.REPLY_WEBHOOK_URL = url
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    assert send().outcomes["delivered"] == 1
    assert process.stdout.readline().startswith(f"reply {reply.id} to conversation {reply.conversation_id}")

    delivery_on.REPLY_WEBHOOK_SECRET = "another secret"
    [forged] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    assert send().outcomes["failed"] == 1
    assert delivery_of(forged).last_error == "HTTP 401: bad signature"


def test_every_attempt_is_logged_and_erased_with_its_conversation(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [503, 400]
    send()
    ReplyDelivery.objects.filter(pk=reply.pk).update(next_attempt_at=reply.timestamp)  # the retry is due now
    send()

    log = list(DeliveryAttempt.objects.filter(delivery=reply.pk).order_by("number"))
    assert [(a.number, a.status, a.outcome) for a in log] == [(1, 503, "retry"), (2, 400, "failed")]
    assert all(a.duration_ms >= 0 and a.started_at <= timezone.now() for a in log)
    assert log[1].error == delivery_of(reply).last_error

    conversations_erase([reply.conversation_id])

    assert not DeliveryAttempt.objects.exists()


def test_a_timeout_is_logged_without_a_status(delivery_on, receiver, django_capture_on_commit_callbacks):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    receiver.hold = 1.5  # past REPLY_WEBHOOK_TIMEOUT_SECONDS (1 s here)

    send()

    [attempt] = DeliveryAttempt.objects.filter(delivery=reply.pk)
    assert (attempt.status, attempt.outcome, attempt.error) == (None, "retry", "no answer within 1 s")
    assert attempt.duration_ms >= 1000


def test_the_api_shows_a_replys_newest_attempts_only(delivery_on, receiver, api, django_capture_on_commit_callbacks):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            delivery_id=reply.pk, number=n, started_at=reply.timestamp, duration_ms=5, status=503, outcome="retry"
        )
        for n in range(1, ATTEMPT_LOG_SHOWN + 6)
    )

    [delivery] = [
        m["delivery"] for m in api.get(f"/conversations/{reply.conversation_id}/").json()["messages"] if m["delivery"]
    ]

    assert [attempt["number"] for attempt in delivery["log"]] == list(range(ATTEMPT_LOG_SHOWN + 5, 5, -1))


def test_a_retry_past_give_up_at_is_logged_as_failed(delivery_on, receiver, django_capture_on_commit_callbacks):
    [reply] = replies_due(delivery_on, django_capture_on_commit_callbacks)
    ReplyDelivery.objects.filter(pk=reply.pk).update(give_up_at=timezone.now() - timedelta(seconds=1))
    receiver.answers = [503]

    send()

    [attempt] = DeliveryAttempt.objects.filter(delivery=reply.pk)
    assert (attempt.status, attempt.outcome, delivery_of(reply).state) == (503, "failed", "failed")


def test_a_410_disables_the_receiver_until_an_operator_enables_it(
    delivery_on, receiver, api, admin_user, django_capture_on_commit_callbacks
):
    replies = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=7, messages=1)
    opening = circuit.CIRCUIT_FAILURES  # a batch's POSTs in flight at first (3 in these tests)
    receiver.answers = [410] * opening  # the 410s stop the batch there
    receiver.hold = 0.3  # they all start before the first answer

    send()

    assert len(receiver.received) == opening
    assert {delivery_of(reply).state for reply in replies} == {"pending"}
    assert sorted(delivery_of(reply).attempts for reply in replies) == [0] * (7 - opening) + [1] * opening
    assert {(a.status, a.outcome) for a in DeliveryAttempt.objects.all()} == {(410, "retry")}
    assert receiver_state().disabled_at is not None
    assert deliveries_due(book_ahead=2.0) is False  # nothing is due while it is disabled: no job is woken
    assert send().admission is Admission.NONE
    assert len(receiver.received) == opening
    health = api.get("/healthz").json()
    assert (health["checks"]["receiver"]["circuit"], health["warnings"]) == ("disabled", ["receiver"])
    assert metric_samples(api.get("/metrics").content.decode())[("realmate_receiver_disabled", ())] == 1

    assert api.post("/api/receiver/enable/").status_code == HTTPStatus.UNAUTHORIZED
    api.force_authenticate(admin_user, token=Token.objects.create(user=admin_user))
    wakes = Wakes()
    with django_capture_on_commit_callbacks(execute=True):
        assert receiver_enable(wake=wakes) is True
    assert len(wakes) == 1

    assert send().outcomes["delivered"] == 7
    assert receiver_state().disabled_at is None
    assert api.post("/api/receiver/enable/").json() == {"was_disabled": False}


def test_enabling_the_receiver_needs_the_permission(api, django_user_model):
    user = django_user_model.objects.create_user("reader")
    api.force_authenticate(user, token=Token.objects.create(user=user))

    response = api.post("/api/receiver/enable/")

    assert (response.status_code, response.json()["code"]) == (HTTPStatus.FORBIDDEN, "permission_denied")
