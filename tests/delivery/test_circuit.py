"""The receiver's circuit breaker and its 410 switch (delivery.circuit), through real batches against a real HTTP
receiver on 127.0.0.1 and the real PostgreSQL."""

from http import HTTPStatus

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from delivery import circuit
from delivery.circuit import Admission, circuit_pass
from delivery.models import DeliveryAttempt, ReceiverCircuit
from delivery.queries import deliveries_due
from delivery.selectors import receiver_state
from delivery.services import receiver_enable
from tests.delivery.batches import Wakes, delivery_of, make_due, replies_due, seconds_until_due, send
from tests.helpers import metric_samples, run_in_parallel

pytestmark = pytest.mark.django_db


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


@pytest.mark.django_db(transaction=True)
def test_only_one_of_many_delivery_processes_takes_a_due_probe(delivery_on):
    ReceiverCircuit.objects.update_or_create(
        id=1, defaults={"failures": 3, "opened_at": timezone.now(), "probe_at": timezone.now()}
    )

    passes = run_in_parallel(lambda: circuit_pass().admission, 6)

    assert sorted(admission.value for admission in passes) == ["none"] * 5 + ["probe"]


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
