"""Reply delivery against a real HTTP receiver on 127.0.0.1 and the real PostgreSQL (delivery.services): batches
claimed, POSTed concurrently and settled, retries scheduled in the rows, an operator's retry, the checks. The
circuit, the client and the attempt log have files of their own."""

import hashlib
import hmac
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection

from chat.models import Message
from delivery.circuit import Admission
from delivery.models import ReceiverCircuit, ReplyDelivery
from delivery.queries import deliveries_claim
from delivery.services import (
    claim_seconds,
    deliveries_retry,
    deliveries_wake_due,
    time_limits,
)
from tests.delivery.batches import Wakes, delivery_of, make_due, replies_due, seconds_until_due, send
from tests.delivery.conftest import SECRET
from tests.e2e.stack import free_port
from tests.factories import MessageFactory
from tests.helpers import age_rows, replies_answer_due, run_in_parallel, wait_until

pytestmark = pytest.mark.django_db


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
