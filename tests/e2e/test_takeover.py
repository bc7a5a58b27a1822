"""A person takes over, on real processes over HTTP (gunicorn, two Celery workers, beat): the group waiting when an
agent writes is never answered, the pause ends by time alone or by RESUME_BOT, PAUSE_BOT, a handoff word, each
conversation's own window, parked agent messages, redelivery, an agent racing the reply batches, and a worker
restart during a pause. The pause is 3 s here (BOT_PAUSE_SECONDS) and the window 1 s, unless a test says otherwise."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http import HTTPStatus

import pytest

from tests.e2e.conftest import SHORT_WINDOWS, running_stack
from tests.helpers import agent_message, new_conversation, new_message, pause_bot, resume_bot, wait_until

pytestmark = pytest.mark.e2e

PAUSE = 3.0
ENV = {**SHORT_WINDOWS, "BOT_PAUSE_SECONDS": str(PAUSE), "HANDOFF_KEYWORDS": "atendente,falar com humano"}


@pytest.fixture(scope="module")
def stack():
    yield from running_stack("takeover", env=ENV, workers=2, beats=1)


def opened(stack, **reply_rules) -> uuid.UUID:
    conversation_id = uuid.uuid4()
    payload = new_conversation(conversation_id)
    if reply_rules:
        payload["data"]["reply_rules"] = reply_rules
    assert stack.post(payload).status_code == HTTPStatus.CREATED
    return conversation_id


def send(stack, payload, expected=HTTPStatus.ACCEPTED) -> dict:
    response = stack.post(payload)
    assert response.status_code == expected, response.text
    return response.json()


def said(stack, conversation_id, content="oi") -> uuid.UUID:
    message_id = uuid.uuid4()
    send(stack, new_message(message_id, conversation_id, content))
    return message_id


def by_id(stack, conversation_id) -> dict[str, dict]:
    return {m["id"]: m for m in stack.conversation(conversation_id)["messages"]}


def bot_replies(stack, conversation_id) -> list[dict]:
    return [m for m in stack.conversation(conversation_id)["messages"] if m["author"] == "bot"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_an_agent_takes_over_mid_group_and_that_group_is_never_answered(stack):
    conversation_id = opened(stack)
    group = [said(stack, conversation_id), said(stack, conversation_id)]
    agent_id = uuid.uuid4()

    send(stack, agent_message(agent_id, conversation_id))
    stack.sweeps_pass(6)  # past the 1 s window several times over

    messages = by_id(stack, conversation_id)
    assert bot_replies(stack, conversation_id) == []
    assert [messages[str(m)]["handled_by"] for m in group] == ["agent", "agent"]
    assert messages[str(agent_id)]["author"] == "agent"
    assert stack.conversation(conversation_id)["bot_paused_until"] is not None


def test_the_pause_ends_with_no_message_and_the_next_burst_is_answered(stack):
    conversation_id = opened(stack)
    send(stack, agent_message(uuid.uuid4(), conversation_id))
    during = said(stack, conversation_id)

    wait_until(lambda: stack.conversation(conversation_id)["bot_paused_until"] is None, PAUSE + 5, 0.1, "pause over")
    burst = [said(stack, conversation_id), said(stack, conversation_id)]

    [reply] = wait_until(lambda: bot_replies(stack, conversation_id), 10, 0.1, "the burst's reply")
    assert set(reply["content"].splitlines()[1:]) == {str(m) for m in burst}
    assert by_id(stack, conversation_id)[str(during)]["handled_by"] == "agent"


def test_pause_bot_then_resume_bot(stack):
    conversation_id = opened(stack)
    waiting = said(stack, conversation_id)

    paused = send(stack, pause_bot(conversation_id, seconds=600), HTTPStatus.OK)
    assert paused["bot_paused_until"] is not None
    during = said(stack, conversation_id)
    stack.sweeps_pass(6)
    assert bot_replies(stack, conversation_id) == []

    resumed = send(stack, resume_bot(conversation_id), HTTPStatus.OK)
    assert resumed["bot_paused_until"] is None
    after = said(stack, conversation_id)

    [reply] = wait_until(lambda: bot_replies(stack, conversation_id), 10, 0.1, "the reply after resuming")
    assert reply["content"].splitlines()[1:] == [str(after)]
    messages = by_id(stack, conversation_id)
    assert [messages[str(m)]["handled_by"] for m in (waiting, during, after)] == ["agent", "agent", "bot"]


def test_a_handoff_word_answers_the_group_at_once_then_pauses(stack):
    conversation_id = opened(stack, window_seconds=30)
    first = said(stack, conversation_id)
    handoff = said(stack, conversation_id, "Quero falar com   HUMANO!")

    [reply] = wait_until(lambda: bot_replies(stack, conversation_id), 5, 0.05, "the handoff reply")
    later = said(stack, conversation_id)

    assert reply["send_reason"] == "handoff"
    assert set(reply["content"].splitlines()[1:]) == {str(first), str(handoff)}
    messages = by_id(stack, conversation_id)
    # At once: within a sweep or two of the word, not after the conversation's 30 s window.
    assert (at(reply["received_at"]) - at(messages[str(handoff)]["received_at"])).total_seconds() < 2
    assert messages[str(later)]["handled_by"] == "agent"


def test_two_conversations_answered_each_at_its_own_window_and_never_early(stack):
    windows = {opened(stack, window_seconds=2): 2.0, opened(stack, window_seconds=10): 10.0}
    sent = {conversation_id: said(stack, conversation_id) for conversation_id in windows}

    replies = {
        conversation_id: wait_until(lambda c=conversation_id: bot_replies(stack, c), 15, 0.1, "its reply")[0]
        for conversation_id in windows
    }

    for conversation_id, window in windows.items():
        message = by_id(stack, conversation_id)[str(sent[conversation_id])]
        lag = (at(replies[conversation_id]["received_at"]) - at(message["received_at"])).total_seconds()
        assert window <= lag < window + 1.5, (window, lag)
        assert replies[conversation_id]["send_reason"] == "quiet"


def test_an_agent_message_parked_then_attached_then_pausing(stack):
    conversation_id, user_id, agent_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert send(stack, new_message(user_id, conversation_id))["outcome"] == "parked"
    assert send(stack, agent_message(agent_id, conversation_id))["outcome"] == "parked"

    created = send(stack, new_conversation(conversation_id), HTTPStatus.CREATED)
    stack.sweeps_pass(6)

    assert [(m["id"], m["author"]) for m in created["messages"]] == [(str(user_id), "user"), (str(agent_id), "agent")]
    assert created["bot_paused_until"] is not None
    assert by_id(stack, conversation_id)[str(user_id)]["handled_by"] == "agent"
    assert bot_replies(stack, conversation_id) == []


def test_an_agent_message_redelivered_is_stored_once(stack):
    conversation_id = opened(stack)
    agent_id = uuid.uuid4()

    first = stack.post(agent_message(agent_id, conversation_id, "Ana aqui"))
    again = stack.post(agent_message(agent_id, conversation_id, "Ana aqui"))

    assert (first.status_code, again.status_code, again.json()["outcome"]) == (202, 200, "duplicate")
    assert [m["id"] for m in stack.conversation(conversation_id)["messages"]] == [str(agent_id)]


def test_agent_messages_racing_the_reply_batches_of_two_workers(stack):
    """Forty groups fall due while an agent writes to each of them, from eight threads: each group is answered by
    the bot exactly once (its reply stored before the agent's message) or taken by the person, never both."""
    conversations = [opened(stack) for _ in range(40)]
    sent = {conversation_id: said(stack, conversation_id) for conversation_id in conversations}
    time.sleep(0.9)  # the 1 s windows end now: the batches and the agents meet

    with ThreadPoolExecutor(max_workers=8) as pool:
        written = pool.map(lambda c: send(stack, agent_message(uuid.uuid4(), c))["id"], conversations)
        agent_ids = dict(zip(conversations, written, strict=True))
    stack.sweeps_pass(6)

    answered = 0
    for conversation_id in conversations:
        messages = by_id(stack, conversation_id)
        user, agent = messages[str(sent[conversation_id])], messages[agent_ids[conversation_id]]
        replies = [m for m in messages.values() if m["author"] == "bot"]
        if user["handled_by"] == "bot":
            [reply] = replies
            assert reply["id"] == user["reply_id"]
            assert at(reply["received_at"]) < at(agent["received_at"])
            answered += 1
        else:
            assert (user["handled_by"], replies) == ("agent", [])
    print(f"{answered} of {len(conversations)} groups answered before the agent wrote")


def test_a_pause_survives_a_restart_of_every_worker(stack):
    conversation_id = opened(stack)
    workers = [name for name in stack.processes if name.startswith("worker")]
    for name in workers:
        stack.stop_role(name)
    # Paused once the workers are down (the web writes it): however long stopping them took under load, the
    # message comes within the pause, and the workers start again while it lasts.
    send(stack, pause_bot(conversation_id, seconds=PAUSE + 2), HTTPStatus.OK)
    during = said(stack, conversation_id)
    for name in workers:
        stack.start_role("worker", name)
    stack.sweeps_pass(3, timeout=90)

    assert bot_replies(stack, conversation_id) == []
    wait_until(lambda: stack.conversation(conversation_id)["bot_paused_until"] is None, PAUSE + 5, 0.1, "pause over")
    after = said(stack, conversation_id)
    [reply] = wait_until(lambda: bot_replies(stack, conversation_id), 10, 0.1, "the reply after the pause")
    assert reply["content"].splitlines()[1:] == [str(after)]
    assert by_id(stack, conversation_id)[str(during)]["handled_by"] == "agent"
