"""Exactly-once under stress: parallel duplicates over HTTP, 3 workers and 2 beats over 200 conversations."""

import json
import random
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from http import HTTPStatus

import pytest
import requests

from tests.e2e.conftest import SHORT_WINDOWS, running_stack
from tests.e2e.scenario import reply_text
from tests.helpers import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack():
    yield from running_stack("stress", env=SHORT_WINDOWS, workers=3, beats=2)


def post(stack, payload) -> requests.Response:
    return requests.post(f"{stack.base_url}/webhook/", json=payload, timeout=15)


def new_message(message_id, conversation_id) -> dict:
    return {
        "type": "NEW_MESSAGE",
        "timestamp": "2025-06-04T14:20:05Z",
        "data": {"id": str(message_id), "content": "oi", "conversation_id": str(conversation_id)},
    }


def test_twelve_parallel_new_conversation_with_one_id_give_exactly_one_201(stack):
    conversation_id = str(uuid.uuid4())
    payload = {"type": "NEW_CONVERSATION", "timestamp": "2025-06-04T14:20:00Z", "data": {"id": conversation_id}}

    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda _: post(stack, payload), range(12)))

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {HTTPStatus.CREATED: 1, HTTPStatus.BAD_REQUEST: 11}
    assert {r.json()["code"] for r in responses if r.status_code == HTTPStatus.BAD_REQUEST} == {"conversation_exists"}
    assert stack.sql("SELECT count(*) FROM chat_conversation WHERE id = %s", (conversation_id,)) == [(1,)]


def test_parallel_redeliveries_of_one_message_store_it_once(stack):
    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()
    post(stack, {"type": "NEW_CONVERSATION", "timestamp": "2025-06-04T14:20:00Z", "data": {"id": str(conversation_id)}})

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = Counter(
            pool.map(lambda _: post(stack, new_message(message_id, conversation_id)).status_code, range(12))
        )

    assert statuses == {HTTPStatus.ACCEPTED: 1, HTTPStatus.OK: 11}


def test_parallel_redeliveries_of_a_parked_message_park_it_once(stack):
    conversation_id, message_id = uuid.uuid4(), uuid.uuid4()

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = Counter(
            pool.map(lambda _: post(stack, new_message(message_id, conversation_id)).status_code, range(12))
        )

    assert statuses == {HTTPStatus.ACCEPTED: 1, HTTPStatus.OK: 11}
    assert stack.sql("SELECT count(*) FROM chat_parkedmessage WHERE id = %s", (str(message_id),)) == [(1,)]


def test_200_conversations_with_3_workers_and_2_beats_get_each_reply_exactly_once(stack):
    rng = random.Random(7)
    conversations = {uuid.uuid4(): [uuid.uuid4() for _ in range(rng.randint(1, 4))] for _ in range(200)}
    events = []
    for conversation_id, message_ids in conversations.items():
        # Some conversations arrive after their first message: those messages are parked, then attached.
        early = rng.random() < 0.2
        create = {"type": "NEW_CONVERSATION", "timestamp": "2025-06-04T14:20:00Z", "data": {"id": str(conversation_id)}}
        messages = [new_message(m, conversation_id) for m in message_ids]
        events.append(messages + [create] if early else [create, *messages])

    def send_conversation(script):
        session = requests.Session()
        return [session.post(f"{stack.base_url}/webhook/", json=event, timeout=15).status_code for event in script]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for script in pool.map(send_conversation, events) for status in script]
    assert all(status in (HTTPStatus.CREATED, HTTPStatus.ACCEPTED) for status in statuses), Counter(statuses)

    ids = [str(c) for c in conversations]
    wait_until(
        lambda: (
            stack.sql("SELECT count(*) FROM chat_message WHERE pending AND conversation_id = ANY(%s::uuid[])", (ids,))
            == [(0,)]
        ),
        timeout=60,
        interval=0.5,
        what="every message answered",
    )
    stack.sweeps_pass()  # a duplicate reply, if one could exist, would have been written by now

    window = timedelta(seconds=float(SHORT_WINDOWS["GROUP_WINDOW_SECONDS"]))
    ttl = timedelta(seconds=float(SHORT_WINDOWS["ORPHAN_TTL_SECONDS"]))
    total_replies = 0
    for conversation_id, message_ids in conversations.items():
        detail = stack.conversation(conversation_id)
        inbound = sorted((m for m in detail["messages"] if m["type"] == "INBOUND"), key=lambda m: m["received_at"])
        replies = {m["id"]: m for m in detail["messages"] if m["type"] == "OUTBOUND"}
        # A message is in its conversation, or it waited more than the TTL for it and expired (under load).
        missing = {str(m) for m in message_ids} - {m["id"] for m in inbound}
        for message_id in missing:
            [(state, waited)] = stack.sql(
                "SELECT p.state, c.created_at - p.received_at FROM chat_parkedmessage p"
                " JOIN chat_conversation c ON c.id = p.conversation_id WHERE p.id = %s",
                (message_id,),
            )
            assert (state, waited > ttl) == ("EXPIRED", True)
        # Exactly one reply per group, a group being arrivals at most one window apart (server clock).
        groups = []
        for message in inbound:
            arrived = datetime.fromisoformat(message["received_at"])
            if groups and arrived - groups[-1][-1][0] <= window:
                groups[-1].append((arrived, message))
            else:
                groups.append([(arrived, message)])
        assert len(replies) == len(groups), detail
        for group in groups:
            reply_ids = {message["reply_id"] for _, message in group}
            assert len(reply_ids) == 1, detail
            reply = replies[reply_ids.pop()]
            ordered = sorted((message for _, message in group), key=lambda m: (m["timestamp"], m["received_at"]))
            assert reply["content"] == reply_text([m["id"] for m in ordered])
        total_replies += len(replies)
    assert total_replies >= len(conversations)


def test_a_chunked_request_body_is_read_whole_and_an_oversized_one_refused(stack):
    """gunicorn directly (no proxy): a sender that streams its body (Transfer-Encoding: chunked) is understood."""
    conversation_id = uuid.uuid4()
    body = json.dumps(
        {"type": "NEW_CONVERSATION", "timestamp": "2025-06-04T14:20:00Z", "data": {"id": str(conversation_id)}}
    )

    def chunks(text: str, size: int = 7):
        for start in range(0, len(text), size):
            yield text[start : start + size].encode()

    created = stack.http.post(f"{stack.base_url}/webhook/", data=chunks(body), timeout=10)
    too_large = stack.http.post(f"{stack.base_url}/webhook/", data=chunks(" " * (1024 * 1024 + 1), 65536), timeout=30)

    assert created.request.headers.get("Transfer-Encoding") == "chunked"
    assert created.status_code == HTTPStatus.CREATED, created.text
    assert created.json()["id"] == str(conversation_id)
    assert too_large.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert too_large.json()["code"] == "payload_too_large"
