"""Reply delivery against a real HTTP receiver on 127.0.0.1 and the real PostgreSQL (delivery.services)."""

import hashlib
import hmac
import subprocess
import sys
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection

from chat.models import Message
from delivery.client import retry_after_seconds
from delivery.models import ReplyDelivery
from delivery.services import DeliveryJob, deliveries_dispatch, deliveries_retry, reply_deliver
from tests.e2e.stack import free_port
from tests.factories import MessageFactory
from tests.helpers import age_rows, replies_answer_due, run_in_parallel, wait_until
from tests.receiver import Receiver

pytestmark = pytest.mark.django_db
SECRET = "reply-secret"


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def delivery_on(settings, receiver):
    settings.REPLY_WEBHOOK_URL = receiver.url
    settings.REPLY_WEBHOOK_SECRET = SECRET
    settings.REPLY_WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.REPLY_DELIVERY_BACKOFF_SECONDS = 1
    settings.REPLY_DELIVERY_BACKOFF_MAX_SECONDS = 4
    return settings


def reply_with_job(settings, django_capture_on_commit_callbacks, messages: int = 2) -> tuple[Message, DeliveryJob]:
    """A due group of `messages` answered; returns the reply and the job dispatched once it committed."""
    first = MessageFactory()
    group = [first, *(MessageFactory(conversation=first.conversation) for _ in range(messages - 1))]
    age_rows(Message, [m.id for m in group], settings.GROUP_WINDOW_SECONDS + 0.1)
    jobs = []
    with django_capture_on_commit_callbacks(execute=True):
        [reply] = replies_answer_due(first.conversation_id, dispatch_delivery=jobs.append)
    [job] = jobs
    return reply, job


def delivery_of(reply: Message) -> ReplyDelivery:
    return ReplyDelivery.objects.get(pk=reply.pk)


def test_no_delivery_is_recorded_while_reply_webhook_url_is_empty(settings, django_capture_on_commit_callbacks):
    settings.REPLY_WEBHOOK_URL = ""
    message = MessageFactory()
    age_rows(Message, [message.id], settings.GROUP_WINDOW_SECONDS + 0.1)
    jobs = []
    with django_capture_on_commit_callbacks(execute=True):
        replies_answer_due(message.conversation_id, dispatch_delivery=jobs.append)
    assert (jobs, ReplyDelivery.objects.count()) == ([], 0)


def test_a_reply_is_posted_once_signed_with_its_id_as_idempotency_key(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)

    result = reply_deliver(job)

    assert result.state == ReplyDelivery.State.DELIVERED
    assert result.retry is None
    [request] = receiver.received
    expected_signature = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Hub-Signature-256"] == expected_signature
    assert request.headers["Idempotency-Key"] == str(reply.id)
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
    assert delivery.lease_token is None


def test_a_job_left_from_before_the_url_was_emptied_waits_for_one(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    delivery_on.REPLY_WEBHOOK_URL = ""

    assert reply_deliver(job).state is None
    assert (delivery_of(reply).state, delivery_of(reply).attempts, receiver.received) == ("pending", 0, [])
    delivery_on.REPLY_WEBHOOK_URL = receiver.url
    assert reply_deliver(job).state == ReplyDelivery.State.DELIVERED


def test_the_same_job_run_again_posts_nothing(delivery_on, receiver, django_capture_on_commit_callbacks):
    _, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    reply_deliver(job)

    assert reply_deliver(job).state is None
    assert len(receiver.received) == 1


@pytest.mark.parametrize("answer", [500, 503, 408, 429], ids=["500", "503", "408", "429"])
def test_a_retryable_answer_schedules_a_new_job_and_voids_the_old_one(
    delivery_on, receiver, django_capture_on_commit_callbacks, answer
):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [answer]

    result = reply_deliver(job)

    assert result.state == ReplyDelivery.State.PENDING
    assert result.retry.message_id == reply.id
    assert result.retry.lease_token != job.lease_token
    assert 0 <= result.retry_in <= delivery_on.REPLY_DELIVERY_BACKOFF_SECONDS
    delivery = delivery_of(reply)
    assert (delivery.attempts, delivery.last_error) == (1, f"HTTP {answer}: ok")
    assert reply_deliver(job).state is None  # the old job holds no lease any more
    assert reply_deliver(result.retry).state == ReplyDelivery.State.DELIVERED
    assert delivery_of(reply).attempts == 2
    assert len(receiver.received) == 2


@pytest.mark.parametrize("answer", [400, 401, 404, 410, 301])
def test_other_answers_fail_at_once_without_retry(delivery_on, receiver, django_capture_on_commit_callbacks, answer):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(answer, {"Location": "/elsewhere"})]

    result = reply_deliver(job)

    assert (result.state, result.retry) == (ReplyDelivery.State.FAILED, None)
    delivery = delivery_of(reply)
    assert delivery.state == "failed"
    assert delivery.last_error.startswith(f"HTTP {answer}: ok")
    assert delivery.lease_until is None


def test_a_connection_refused_and_a_timeout_are_retried(delivery_on, receiver, django_capture_on_commit_callbacks):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.stop()
    refused = reply_deliver(job)
    assert refused.retry is not None
    assert "ConnectError" in delivery_of(reply).last_error

    receiver.start()
    receiver.hold = delivery_on.REPLY_WEBHOOK_TIMEOUT_SECONDS + 0.5
    timed_out = reply_deliver(refused.retry)
    assert timed_out.retry is not None
    assert delivery_of(reply).last_error == "no answer within 1 s"
    assert delivery_of(reply).attempts == 2


def test_only_the_head_of_a_huge_answer_is_read(delivery_on, receiver, django_capture_on_commit_callbacks):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(503, {}, "é".encode() * 50_000_000)]  # 100 MB, far beyond the socket buffers

    result = reply_deliver(job)

    assert result.retry is not None
    assert delivery_of(reply).last_error == "HTTP 503: " + "é" * 200
    wait_until(lambda: receiver.answers_cut_short == 1, timeout=5, what="the worker hung up instead of reading 100 MB")


def test_an_answer_whose_body_does_not_decode_is_still_read_for_its_status(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(502, {"Content-Encoding": "gzip"}, b"not gzip at all")]

    assert reply_deliver(job).retry is not None
    assert delivery_of(reply).last_error == "HTTP 502: "


def test_retry_after_is_honoured_and_a_long_one_is_left_to_the_sweep(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(429, {"Retry-After": "3"}), (503, {"Retry-After": "100"})]

    asked_three = reply_deliver(job)
    assert asked_three.retry_in == 3.0

    asked_hundred = reply_deliver(asked_three.retry)
    # Longer than the backoff's cap: no Celery job held back that long; the lease ends then, and the sweep acts.
    assert (asked_hundred.state, asked_hundred.retry) == (ReplyDelivery.State.PENDING, None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT extract(epoch FROM lease_until - clock_timestamp()) FROM delivery_replydelivery")
        assert 100 < cursor.fetchone()[0] <= 100 + delivery_on.REPLY_LEASE_SECONDS


def test_retries_stop_at_give_up_at_and_the_delivery_fails(delivery_on, receiver, django_capture_on_commit_callbacks):
    delivery_on.REPLY_DELIVERY_MAX_SECONDS = 0
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [(503, {"Retry-After": "1"})]

    result = reply_deliver(job)

    assert (result.state, result.retry) == (ReplyDelivery.State.FAILED, None)
    assert delivery_of(reply).last_error == "HTTP 503: ok (gave up: past give_up_at)"


def test_the_sweep_dispatches_a_new_job_only_for_pending_deliveries_whose_lease_ran_out(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    reply, lost_job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    delivered, delivered_job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    reply_deliver(delivered_job)
    jobs = []
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_dispatch(dispatch=jobs.append) == 0  # the first job's lease still holds

    ReplyDelivery.objects.update(lease_until=reply.timestamp - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_dispatch(dispatch=jobs.append) == 1
    [job] = jobs
    assert job.message_id == reply.id
    assert job.lease_token != lost_job.lease_token
    assert reply_deliver(lost_job).state is None  # the lost job, should it come back, does nothing
    assert reply_deliver(job).state == ReplyDelivery.State.DELIVERED
    assert receiver.ids() == [str(delivered.id), str(reply.id)]


def test_an_operator_retry_restarts_failed_deliveries_and_leaves_delivered_ones(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    failed, failed_job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    delivered, delivered_job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [400]
    reply_deliver(failed_job)
    reply_deliver(delivered_job)

    jobs = []
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_retry([failed.id, delivered.id], dispatch=jobs.append) == 1

    assert [job.message_id for job in jobs] == [failed.id]
    assert delivery_of(failed).state == ReplyDelivery.State.PENDING
    assert reply_deliver(jobs[0]).state == ReplyDelivery.State.DELIVERED
    assert (delivery_of(failed).attempts, delivery_of(delivered).attempts) == (2, 1)


@pytest.mark.django_db(transaction=True)
def test_parallel_runs_of_one_job_post_once(delivery_on, receiver, django_capture_on_commit_callbacks):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.hold = 0.3  # every run overlaps the first one's POST

    states = run_in_parallel(lambda: reply_deliver(job).state, 6)

    assert sorted(states, key=str) == [*[None] * 5, "delivered"]
    assert receiver.ids() == [str(reply.id)]


def test_the_conversation_api_shows_each_reply_delivery_state(
    delivery_on, receiver, api, django_capture_on_commit_callbacks, django_assert_num_queries
):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks, messages=3)
    receiver.answers = [500]
    reply_deliver(job)

    with django_assert_num_queries(3):  # conversation, messages, their replies' deliveries
        messages = api.get(f"/conversations/{reply.conversation_id}/").json()["messages"]

    by_type = {}
    for message in messages:
        by_type.setdefault(message["type"], []).append(message["delivery"])
    assert by_type["INBOUND"] == [None, None, None]
    assert by_type["OUTBOUND"] == [
        {"state": "pending", "attempts": 1, "last_error": "HTTP 500: ok", "delivered_at": None}
    ]


def test_the_admin_retry_action_restarts_a_failed_delivery(
    delivery_on, receiver, client, admin_user, django_capture_on_commit_callbacks
):
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    receiver.answers = [400]
    reply_deliver(job)
    client.force_login(admin_user)

    response = client.post(
        "/admin/delivery/replydelivery/",
        {"action": "retry_delivery", "_selected_action": [str(reply.id)]},
        follow=True,
    )

    assert "1 delivery(ies) started again." in response.content.decode()
    delivery = delivery_of(reply)
    assert (delivery.state, delivery.lease_token is not None) == ("pending", True)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("7", 7.0), ("0", 0.0), (None, None), ("soon", None), ("-3", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)],
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
    reply, job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    assert reply_deliver(job).state == ReplyDelivery.State.DELIVERED
    assert process.stdout.readline().startswith(f"reply {reply.id} to conversation {reply.conversation_id}")

    delivery_on.REPLY_WEBHOOK_SECRET = "another secret"
    forged, forged_job = reply_with_job(delivery_on, django_capture_on_commit_callbacks)
    assert reply_deliver(forged_job).state == ReplyDelivery.State.FAILED
    assert delivery_of(forged).last_error == "HTTP 401: bad signature"
