"""The timing rules of docs/contract.md at the true windows (5 s, 6 s, sweep 1 s) over real HTTP.

Every scenario runs at once in its own thread against one stack, so the whole file takes about as long as
the longest scenario (~16 s). Each test then checks what its scenario observed.
"""

import uuid
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import pytest
import requests

from tests.e2e.conftest import running_stack
from tests.e2e.scenario import Observation, Scenario, reply_text, seconds_between

pytestmark = pytest.mark.e2e

SCENARIOS = {}


def scenario(function):
    SCENARIOS[function.__name__] = function
    return function


@scenario
def single_message(stack, timestamp="2025-06-04T14:20:05Z"):
    s = Scenario(stack, timestamp)
    c, m = uuid.uuid4(), uuid.uuid4()
    s.open(c)
    s.message(m, c)
    return s.finish(at=9), c, [m]


@scenario
def single_message_current_timestamp(stack):
    return single_message(stack, timestamp=None)


@scenario
def burst_at_0_2_4(stack):
    s = Scenario(stack)
    c, ids = uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
    s.open(c)
    for offset, message_id in zip((0, 2, 4), ids, strict=True):
        s.at(offset)
        s.message(message_id, c)
    return s.finish(at=13), c, ids


@scenario
def two_messages_8s_apart(stack):
    s = Scenario(stack)
    c, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    s.open(c)
    s.message(first, c)
    s.at(8)
    s.message(second, c)
    return s.finish(at=15), c, [first, second]


@scenario
def two_conversations_interleaved(stack):
    s = Scenario(stack)
    x, y = uuid.uuid4(), uuid.uuid4()
    xs, ys = [uuid.uuid4(), uuid.uuid4()], [uuid.uuid4(), uuid.uuid4()]
    s.open(x)
    s.open(y, label="open-y")
    for offset, (message_id, conversation_id) in enumerate(
        zip([xs[0], ys[0], xs[1], ys[1]], [x, y, x, y], strict=True)
    ):
        s.at(offset)
        s.message(message_id, conversation_id)
    return s.finish(at=11), (x, y), (xs, ys)


def early_message(stack, lead: float, finish_at: float):
    s = Scenario(stack)
    c, m = uuid.uuid4(), uuid.uuid4()
    s.message(m, c, label="message")
    s.at(lead)
    s.open(c)
    return s.finish(at=finish_at), c, [m]


@scenario
def message_2s_before_conversation(stack):
    return early_message(stack, 2, 9)


@scenario
def message_4s_before_conversation(stack):
    return early_message(stack, 4, 10)


@scenario
def message_8s_before_conversation(stack):
    observation, c, [m] = early_message(stack, 8, 14)
    s = Scenario(stack)
    s.message(m, c, label="redelivery")
    observation.statuses["redelivery"] = s.seen.statuses["redelivery"]
    observation.bodies["redelivery"] = s.seen.bodies["redelivery"]
    return observation, c, [m]


@scenario
def two_early_messages(stack):
    s = Scenario(stack)
    c, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    s.message(first, c, label="first")
    s.at(1)
    s.message(second, c, label="second")
    s.at(3)
    s.open(c)
    return s.finish(at=10), c, [first, second]


@scenario
def burst_closed_after_half_a_second(stack):
    s = Scenario(stack)
    c, ids = uuid.uuid4(), [uuid.uuid4(), uuid.uuid4()]
    s.open(c)
    s.message(ids[0], c)
    s.at(0.3)
    s.message(ids[1], c)
    s.at(0.5)
    s.close(c)
    return s.finish(at=4), c, ids


@scenario
def thirty_parallel_messages(stack):
    s = Scenario(stack)
    c, ids = uuid.uuid4(), [uuid.uuid4() for _ in range(30)]
    s.open(c)

    def send(message_id):
        payload = {
            "type": "NEW_MESSAGE",
            "timestamp": "2025-06-04T14:20:05Z",
            "data": {"id": str(message_id), "content": "parte", "conversation_id": str(c)},
        }
        return requests.post(f"{stack.base_url}/webhook/", json=payload, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(send, ids))
    s.seen.sent_at[ids[-1]] = s.now()
    s.seen.statuses["parallel"] = statuses
    return s.finish(at=9), c, ids


@pytest.fixture(scope="module")
def observed():
    """Start one stack with the default windows and run every scenario in parallel against it."""
    yield from _observed()


def _observed():
    for stack in running_stack("true", env={"GROUP_WINDOW_SECONDS": "5", "ORPHAN_TTL_SECONDS": "6"}):
        with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
            futures = {name: pool.submit(function, stack) for name, function in SCENARIOS.items()}
            yield {name: future.result() for name, future in futures.items()}


def only_reply(observation: Observation, conversation_id) -> dict:
    replies = observation.outbound(conversation_id)
    assert len(replies) == 1, replies
    return replies[0]


def server_lag(observation: Observation, conversation_id, reply: dict) -> float:
    """Seconds from the last answered message's arrival to the reply, both on the database clock."""
    answered = [m for m in observation.inbound(conversation_id) if m["reply_id"] == reply["id"]]
    return seconds_between(max(m["received_at"] for m in answered), reply["timestamp"])


@pytest.mark.parametrize("name", ["single_message", "single_message_current_timestamp"])
def test_single_message_gets_one_reply_after_5_and_within_7_seconds(observed, name):
    observation, c, [m] = observed[name]

    reply = only_reply(observation, c)

    assert reply["content"] == reply_text([m])
    assert 5.0 <= server_lag(observation, c, reply) < 7.0
    seen_after = observation.reply_seen_at[uuid.UUID(reply["id"])] - observation.sent_at[m]
    assert 5.0 <= seen_after < 7.0


def test_messages_at_0_2_4_get_one_reply_listing_all_three_after_5s_of_quiet(observed):
    observation, c, ids = observed["burst_at_0_2_4"]

    reply = only_reply(observation, c)

    assert reply["content"] == reply_text(ids)
    assert server_lag(observation, c, reply) >= 5.0
    assert observation.reply_seen_at[uuid.UUID(reply["id"])] - observation.sent_at[ids[-1]] >= 5.0


def test_two_messages_8s_apart_get_two_replies(observed):
    observation, c, (first, second) = observed["two_messages_8s_apart"]

    replies = observation.outbound(c)

    assert [r["content"] for r in replies] == [reply_text([first]), reply_text([second])]
    # The first reply came before the second message was even sent.
    assert observation.reply_seen_at[uuid.UUID(replies[0]["id"])] < observation.sent_at[second]


def test_interleaved_conversations_are_grouped_separately(observed):
    observation, (x, y), (xs, ys) = observed["two_conversations_interleaved"]

    assert only_reply(observation, x)["content"] == reply_text(xs)
    assert only_reply(observation, y)["content"] == reply_text(ys)


@pytest.mark.parametrize("name", ["message_2s_before_conversation", "message_4s_before_conversation"])
def test_message_before_its_conversation_is_kept_and_answered(observed, name):
    observation, c, [m] = observed[name]

    assert observation.statuses["message"] == HTTPStatus.ACCEPTED
    assert observation.bodies["message"]["outcome"] == "parked"
    assert observation.statuses["open"] == HTTPStatus.CREATED
    assert [msg["id"] for msg in observation.bodies["open"]["messages"]] == [str(m)]
    reply = only_reply(observation, c)
    assert reply["content"] == reply_text([m])
    # The window counts from the message's own arrival, not from the conversation's.
    assert 5.0 <= server_lag(observation, c, reply) < 7.0


def test_message_8s_before_its_conversation_is_never_attached(observed):
    observation, c, [m] = observed["message_8s_before_conversation"]

    assert observation.statuses["message"] == HTTPStatus.ACCEPTED
    assert observation.statuses["open"] == HTTPStatus.CREATED
    assert observation.bodies["open"]["messages"] == []
    assert observation.final[c]["messages"] == []
    assert observation.statuses["redelivery"] == HTTPStatus.BAD_REQUEST
    assert observation.bodies["redelivery"]["code"] == "buffer_expired"


def test_two_early_messages_are_answered_together(observed):
    observation, c, ids = observed["two_early_messages"]

    assert only_reply(observation, c)["content"] == reply_text(ids)


def test_burst_closed_after_half_a_second_still_gets_its_reply(observed):
    observation, c, ids = observed["burst_closed_after_half_a_second"]

    assert observation.statuses["close"] == HTTPStatus.OK
    reply = only_reply(observation, c)
    assert reply["content"] == reply_text(ids)
    assert observation.final[c]["status"] == "CLOSED"
    # Closed: answered at the next sweep, without waiting for the window.
    assert observation.reply_seen_at[uuid.UUID(reply["id"])] < 3.5


def test_thirty_parallel_messages_get_one_reply_listing_all(observed):
    observation, c, ids = observed["thirty_parallel_messages"]

    assert observation.statuses["parallel"] == [HTTPStatus.ACCEPTED] * 30
    reply = only_reply(observation, c)
    inbound = observation.inbound(c)
    assert reply["content"] == reply_text([m["id"] for m in inbound])
    assert {m["id"] for m in inbound} == {str(i) for i in ids}
    assert all(m["reply_id"] == reply["id"] for m in inbound)


def test_no_scenario_saw_a_server_error(observed):
    for name, (observation, *_rest) in observed.items():
        for label, status in observation.statuses.items():
            statuses = status if isinstance(status, list) else [status]
            assert all(code < 500 for code in statuses), (name, label, status)


def test_replies_carry_generation_time_not_payload_time(observed):
    observation, c, _ids = observed["single_message"]
    reply = only_reply(observation, c)
    [inbound] = observation.inbound(c)
    # Generated on the database clock when the reply was written: its arrival time, 5 s after the message's.
    assert reply["timestamp"] == reply["received_at"]
    assert seconds_between(inbound["received_at"], reply["timestamp"]) >= 5.0
    assert inbound["timestamp"] == "2025-06-04T14:20:05Z"
