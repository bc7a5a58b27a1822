"""Recovery of every reply in a time range (delivery.recovery): advanced by delivery's periodic step behind live
replies, once per reply however many steps run at once; started from the API, the command and the admin."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.authtoken.models import Token

from chat.models import Message
from delivery.models import ReplyDelivery, ReplyRecovery
from delivery.recovery import recoveries_advance, recovery_cancel, recovery_start
from delivery.services import deliveries_wake_due
from tests.delivery.batches import Wakes, replies_due, send
from tests.helpers import run_in_parallel

pytestmark = pytest.mark.django_db


def delivered_replies(settings, capture, count: int) -> list[Message]:
    """`count` replies, delivered, their deliveries opened count, count - 1, ..., 1 hours ago (oldest first)."""
    replies = replies_due(settings, capture, conversations=count, messages=1)
    while send().claimed:
        pass
    assert ReplyDelivery.objects.filter(state="delivered").count() == count
    now = timezone.now()
    for hours_ago, reply in zip(range(count, 0, -1), replies, strict=True):
        ReplyDelivery.objects.filter(pk=reply.pk).update(created_at=now - timedelta(hours=hours_ago))
    return replies


def times_received(receiver, replies: list[Message]) -> list[int]:
    ids = receiver.ids()
    return [ids.count(str(reply.id)) for reply in replies]


def recovery_run() -> ReplyRecovery:
    """Delivery's periodic step and the batches it wakes, until the running recovery is done."""
    recovery = ReplyRecovery.objects.get(state="running")
    for _ in range(20):
        deliveries_wake_due(wake=Wakes())
        while send().claimed:
            pass
        recovery.refresh_from_db()
        if recovery.state != "running":
            return recovery
    raise AssertionError("the recovery did not finish")


def test_a_recovery_sends_again_exactly_the_replies_in_its_range(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    delivery_on.REPLY_DELIVERY_BATCH = 2  # several steps
    replies = delivered_replies(delivery_on, django_capture_on_commit_callbacks, 6)
    failed, waiting = replies[2], replies[3]
    ReplyDelivery.objects.filter(pk=failed.pk).update(state="failed", delivered_at=None, last_error="HTTP 400")
    # Pending anyway (its retry an hour away): left to its own delivery.
    ReplyDelivery.objects.filter(pk=waiting.pk).update(
        state="pending", delivered_at=None, next_attempt_at=timezone.now() + timedelta(hours=1)
    )
    now = timezone.now()

    recovery_start(since=now - timedelta(hours=5.5), until=now - timedelta(hours=1.5), requested_by="ops")
    recovery = recovery_run()

    # In range: 5, 4, 3 and 2 hours ago; 6 and 1 hours ago are not.
    assert times_received(receiver, replies) == [1, 2, 2, 1, 2, 1]
    assert (recovery.state, recovery.total, recovery.requeued, recovery.skipped) == ("done", 4, 3, 1)
    assert recovery.done_share == 1.0
    assert recovery.finished_at is not None
    sent_again = ReplyDelivery.objects.filter(pk__in=[replies[1].pk, failed.pk, replies[4].pk])
    assert set(sent_again.values_list("state", "attempts")) == {("delivered", 2)}
    assert ReplyDelivery.objects.get(pk=failed.pk).give_up_at > now  # a fresh allowance


def test_a_recovery_waits_while_a_batch_of_live_replies_is_due(
    delivery_on, receiver, django_capture_on_commit_callbacks
):
    delivery_on.REPLY_DELIVERY_BATCH = 2
    old = delivered_replies(delivery_on, django_capture_on_commit_callbacks, 2)
    recovery_start(since=timezone.now() - timedelta(days=1), until=None, requested_by="ops")
    live = replies_due(delivery_on, django_capture_on_commit_callbacks, conversations=2, messages=1)

    assert recoveries_advance() == 0  # a batch of live replies is due: they go first
    assert ReplyRecovery.objects.get().total == 2  # counted all the same; the live ones came after `until` (now)
    assert send().claimed == 2
    assert sorted(receiver.ids()[2:]) == sorted(str(reply.id) for reply in live)
    assert recoveries_advance() == 2
    assert set(ReplyDelivery.objects.filter(pk__in=[r.pk for r in old]).values_list("state", flat=True)) == {"pending"}


@pytest.mark.django_db(transaction=True)
def test_steps_running_at_once_send_each_reply_again_once(delivery_on, receiver, django_capture_on_commit_callbacks):
    delivery_on.REPLY_DELIVERY_BATCH = 3
    replies = delivered_replies(delivery_on, django_capture_on_commit_callbacks, 8)
    recovery_start(since=timezone.now() - timedelta(days=1), until=None, requested_by="ops")

    # One step holds the recovery; the others pass it over, or find its step due and wait.
    assert sum(run_in_parallel(recoveries_advance, 4)) == 3
    recovery_run()

    assert times_received(receiver, replies) == [2] * 8
    assert ReplyRecovery.objects.get().requeued == 8


def test_a_cancelled_recovery_stops_where_it_stands(delivery_on, receiver, django_capture_on_commit_callbacks):
    delivery_on.REPLY_DELIVERY_BATCH = 2
    delivered_replies(delivery_on, django_capture_on_commit_callbacks, 4)
    recovery = recovery_start(since=timezone.now() - timedelta(days=1), until=None, requested_by="ops")
    assert recoveries_advance() == 2
    send()

    assert recovery_cancel(recovery.id) is True
    assert recovery_cancel(recovery.id) is False
    assert recoveries_advance() == 0
    recovery.refresh_from_db()
    assert (recovery.state, recovery.requeued) == ("cancelled", 2)


# --- the API, the command, the admin


@pytest.fixture
def operator(api, django_user_model):
    """A token whose user may start recoveries."""
    user = django_user_model.objects.create_user("ops")
    user.user_permissions.add(Permission.objects.get(codename="add_replyrecovery"))
    api.force_authenticate(user, token=Token.objects.create(user=user))
    return api


def test_the_api_starts_a_recovery_and_shows_its_progress(delivery_on, operator):
    since = timezone.now() - timedelta(hours=2)

    response = operator.post("/api/deliveries/recoveries/", {"since": since.isoformat()}, format="json")

    assert response.status_code == HTTPStatus.ACCEPTED
    body = response.json()
    assert (body["state"], body["total"], body["done_share"], body["requested_by"]) == ("running", None, None, "ops")
    assert response["Location"].endswith(f"/api/deliveries/recoveries/{body['id']}")
    recoveries_advance()
    shown = operator.get(f"/api/deliveries/recoveries/{body['id']}/").json()
    assert (shown["state"], shown["total"], shown["done_share"]) == ("done", 0, 1.0)
    assert [item["id"] for item in operator.get("/api/deliveries/recoveries/").json()] == [body["id"]]
    assert operator.post(f"/api/deliveries/recoveries/{body['id']}/cancel/").json() == {"was_running": False}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"since": "yesterday"}, HTTPStatus.BAD_REQUEST, "invalid_payload"),
        ({}, HTTPStatus.BAD_REQUEST, "invalid_payload"),
        ({"since": "2026-12-05T10:00:00Z", "until": "2026-12-05T09:00:00Z"}, HTTPStatus.BAD_REQUEST, "invalid_range"),
        ({"since": "2999-01-01T00:00:00Z"}, HTTPStatus.BAD_REQUEST, "invalid_range"),
    ],
)
def test_the_api_refuses_a_range_that_cannot_work(delivery_on, operator, body, status, code):
    response = operator.post("/api/deliveries/recoveries/", body, format="json")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert not ReplyRecovery.objects.exists()


def test_a_range_reaching_into_the_future_ends_now(delivery_on, operator):
    response = operator.post(
        "/api/deliveries/recoveries/", {"since": "2026-01-01T00:00:00Z", "until": "2999-01-01T00:00:00Z"}, format="json"
    )

    assert response.status_code == HTTPStatus.ACCEPTED
    assert ReplyRecovery.objects.get().until <= timezone.now()


def test_the_api_refuses_a_recovery_while_delivery_is_off(settings, operator):
    settings.REPLY_WEBHOOK_URL = ""

    response = operator.post("/api/deliveries/recoveries/", {"since": "2026-12-05T10:00:00Z"}, format="json")

    assert (response.status_code, response.json()["code"]) == (HTTPStatus.CONFLICT, "delivery_off")


def test_recoveries_need_the_permission(delivery_on, api, django_user_model):
    user = django_user_model.objects.create_user("reader")
    api.force_authenticate(user, token=Token.objects.create(user=user))

    for response in (
        api.post("/api/deliveries/recoveries/", {"since": "2026-12-05T10:00:00Z"}, format="json"),
        api.get("/api/deliveries/recoveries/"),
        api.get("/api/deliveries/recoveries/1/"),
    ):
        assert (response.status_code, response.json()["code"]) == (HTTPStatus.FORBIDDEN, "permission_denied")
    api.force_authenticate(None)
    assert api.get("/api/deliveries/recoveries/").status_code == HTTPStatus.UNAUTHORIZED


@pytest.mark.parametrize("recovery_id", ["999", "abc", "-1", "²", "99999999999999999999"])
def test_an_unknown_recovery_is_not_found(delivery_on, operator, recovery_id):
    response = operator.get(f"/api/deliveries/recoveries/{recovery_id}/")

    assert (response.status_code, response.json()["code"]) == (HTTPStatus.NOT_FOUND, "not_found")


def test_the_command_starts_a_recovery(delivery_on, capsys):
    call_command("recover_replies", "--since", "2026-01-05T10:00:00Z", "--until", "2026-01-05T11:00:00")

    recovery = ReplyRecovery.objects.get()
    assert (recovery.since.isoformat(), recovery.until.isoformat()) == (
        "2026-01-05T10:00:00+00:00",
        "2026-01-05T11:00:00+00:00",
    )
    assert recovery.requested_by == "manage.py recover_replies"
    assert f"recovery {recovery.id} started" in capsys.readouterr().out
    for nonsense in ("last tuesday", "2026-13-45T10:00:00Z"):
        with pytest.raises(CommandError, match="ISO 8601"):
            call_command("recover_replies", "--since", nonsense)
    with pytest.raises(CommandError, match="out of range"):
        call_command("recover_replies", "--since", "0001-01-01T00:00:00+05:00")
    with pytest.raises(CommandError, match="before"):
        call_command("recover_replies", "--since", "2026-12-05T11:00:00Z", "--until", "2026-12-05T10:00:00Z")


def test_the_admin_starts_a_recovery_and_cancels_it(delivery_on, admin_client):
    page = admin_client.post(
        "/admin/delivery/replyrecovery/add/", {"since_0": "2026-12-04", "since_1": "10:00:00"}, follow=True
    )

    recovery = ReplyRecovery.objects.get()
    assert (recovery.requested_by, recovery.state) == ("admin", "running")
    assert page.status_code == HTTPStatus.OK
    admin_client.post(
        "/admin/delivery/replyrecovery/", {"action": "cancel_recovery", "_selected_action": [recovery.id]}
    )
    recovery.refresh_from_db()
    assert recovery.state == "cancelled"
    listing = admin_client.get("/admin/delivery/replyrecovery/")
    assert listing.status_code == HTTPStatus.OK
    assert b"cancelled" in listing.content


def test_the_admin_refuses_a_range_that_cannot_work(delivery_on, admin_client):
    page = admin_client.post(
        "/admin/delivery/replyrecovery/add/",
        {"since_0": "2999-01-01", "since_1": "10:00:00"},
    )

    assert b"must come before" in page.content
    assert not ReplyRecovery.objects.exists()
