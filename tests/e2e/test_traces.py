"""Traces end to end: gunicorn, a worker, beat and a delivery worker with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a
real OTLP/HTTP receiver started by the test (tests/otlp_receiver.py), and replies POSTed to a real receiver. One
message's story is one trace: its webhook request, the reply that answered its group, each delivery attempt."""

import uuid
from http import HTTPStatus

import pytest

from tests.e2e.conftest import SHORT_WINDOWS, started
from tests.e2e.stack import Stack
from tests.helpers import wait_until
from tests.otlp_receiver import OtlpReceiver, traceparent_ids

pytestmark = pytest.mark.e2e

# What the chat system's own trace would send with its webhook: the request joins it.
SENDER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SENDER_SPAN = "00f067aa0ba902b7"
TIMESTAMP = "2025-06-04T14:20:00Z"


@pytest.fixture(scope="module")
def collector():
    collector = OtlpReceiver().start()
    yield collector
    collector.stop()


@pytest.fixture(scope="module")
def stack(receiver, collector):
    env = {
        **SHORT_WINDOWS,
        "REPLY_WEBHOOK_URL": receiver.url,
        "REPLY_DELIVERY_BACKOFF_SECONDS": "1",
        "REPLY_DELIVERY_BACKOFF_MAX_SECONDS": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        # Spans leave each process within 0.1 s instead of the SDK's 5 s.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    yield from started(Stack("traces", env=env, workers=1, beats=1, deliverers=1))


def webhook_span(collector, message_id: str):
    def found():
        spans = [s for s in collector.spans if s.attributes.get("realmate.message.id") == message_id]
        return spans[0] if spans else None

    return wait_until(found, 15, 0.1, f"the webhook span of {message_id}")


def test_a_message_trace_goes_from_its_webhook_to_its_reply_and_each_delivery_attempt(stack, receiver, collector):
    conversation_id = str(uuid.uuid4())
    # The first POST fails: the reply is delivered on its second attempt, and each has its span.
    receiver.script(conversation_id, [503])
    assert (
        stack.post({"type": "NEW_CONVERSATION", "timestamp": TIMESTAMP, "data": {"id": conversation_id}}).status_code
        == HTTPStatus.CREATED
    )
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for message_id, headers in ((first, {}), (second, {"traceparent": f"00-{SENDER_TRACE}-{SENDER_SPAN}-01"})):
        data = {"id": message_id, "content": "oi", "conversation_id": conversation_id}
        response = stack.post({"type": "NEW_MESSAGE", "timestamp": TIMESTAMP, "data": data}, headers=headers)
        assert response.status_code == HTTPStatus.ACCEPTED

    # The webhook requests: Django's server spans, named by their ids; the second joined the sender's trace.
    first_span, second_span = webhook_span(collector, first), webhook_span(collector, second)
    assert first_span.service == "realmate-web"
    assert first_span.attributes["realmate.conversation.id"] == conversation_id
    assert first_span.attributes["realmate.event.type"] == "NEW_MESSAGE"
    assert first_span.attributes["realmate.webhook.outcome"] == "stored"
    assert (second_span.trace_id, second_span.parent_span_id) == (SENDER_TRACE, SENDER_SPAN)
    stored = stack.sql("SELECT id::text, traceparent FROM chat_message WHERE id IN (%s, %s)", (first, second))
    assert {id_: traceparent_ids(traceparent) for id_, traceparent in stored} == {
        first: first_span.ids,
        second: second_span.ids,
    }

    # The reply: in the newest message's trace, linked to the other message's request and to the batch.
    [reply] = wait_until(lambda: collector.spans_named("reply"), 20, 0.1, "the reply span")
    [[reply_id, reply_traceparent]] = stack.sql(
        "SELECT id::text, traceparent FROM chat_message WHERE conversation_id = %s AND type = 'OUTBOUND'",
        (conversation_id,),
    )
    assert reply.service == "realmate-worker"
    assert (reply.trace_id, reply.parent_span_id) == second_span.ids
    assert traceparent_ids(reply_traceparent) == reply.ids
    assert reply.attributes["realmate.reply.id"] == reply_id
    assert reply.attributes["realmate.message.ids"] == [first, second]
    assert reply.attributes["realmate.reply.reason"] == "quiet"
    [batch] = [s for s in collector.spans_named("reply batch") if s.ids in reply.links]
    assert batch.attributes["realmate.batch.replies"] >= 1
    assert first_span.ids in reply.links

    # Each delivery attempt: a child of the reply, with its number and the receiver's answer; the POST carries the
    # reply's traceparent, so the receiver's own spans can join too.
    attempts = wait_until(
        lambda: (spans := collector.spans_named("POST reply")) and len(spans) == 2 and spans, 20, 0.1, "two attempts"
    )
    attempts.sort(key=lambda span: span.attributes["realmate.delivery.attempt"])
    assert [(s.trace_id, s.parent_span_id) for s in attempts] == [(reply.trace_id, reply.span_id)] * 2
    assert [s.service for s in attempts] == ["realmate-delivery"] * 2
    assert [s.attributes["http.response.status_code"] for s in attempts] == [503, 200]
    assert [s.status for s in attempts] == [2, 0]
    assert [s.attributes["realmate.reply.id"] for s in attempts] == [reply_id] * 2
    assert attempts[0].end_ns <= attempts[1].start_ns
    assert [r.headers["traceparent"] for r in receiver.received_for(conversation_id)] == [reply_traceparent] * 2


def test_a_reply_follows_its_newest_sampled_message_and_an_unsampled_story_sends_no_traceparent(
    stack, receiver, collector
):
    """The sender's decision is followed (a parent-based sampler): flags 00 keeps nothing; a malformed traceparent
    is ignored (a new trace, sampled here) and the webhook is answered as usual."""
    unsampled = {"traceparent": f"00-{SENDER_TRACE}-{SENDER_SPAN}-00"}
    mixed, dropped = str(uuid.uuid4()), str(uuid.uuid4())
    messages = {mixed: [str(uuid.uuid4()) for _ in range(3)], dropped: [str(uuid.uuid4())]}
    headers = {mixed: [unsampled, {"traceparent": "not-a-traceparent"}, unsampled], dropped: [unsampled]}
    for conversation_id in (mixed, dropped):
        data = {"id": conversation_id}
        created = stack.post({"type": "NEW_CONVERSATION", "timestamp": TIMESTAMP, "data": data})
        assert created.status_code == HTTPStatus.CREATED
        for message_id, sent in zip(messages[conversation_id], headers[conversation_id], strict=True):
            data = {"id": message_id, "content": "oi", "conversation_id": conversation_id}
            response = stack.post({"type": "NEW_MESSAGE", "timestamp": TIMESTAMP, "data": data}, headers=sent)
            assert response.status_code == HTTPStatus.ACCEPTED

    # Only the message with the malformed header was traced: its request began a trace of its own.
    first, malformed, last = messages[mixed]
    malformed_span = webhook_span(collector, malformed)
    assert malformed_span.trace_id != SENDER_TRACE
    assert not malformed_span.parent_span_id
    stored = dict(
        stack.sql(
            "SELECT id::text, traceparent FROM chat_message WHERE type = 'INBOUND' AND id = ANY(%s)",
            ([first, malformed, last, *messages[dropped]],),
        )
    )
    assert stored[first] == stored[last] == stored[messages[dropped][0]] == ""
    assert traceparent_ids(stored[malformed]) == malformed_span.ids

    # The reply of the mixed burst is a child of its newest traced message, not of its newest; the other reply has
    # no span, stores nothing, and is POSTed without a traceparent.
    def delivered(conversation_id):
        return receiver.received_for(conversation_id) or None

    [mixed_post] = wait_until(lambda: delivered(mixed), 20, 0.1, "the mixed burst's reply delivered")
    [dropped_post] = wait_until(lambda: delivered(dropped), 20, 0.1, "the unsampled reply delivered")
    [reply] = [s for s in collector.spans_named("reply") if s.attributes["realmate.conversation.id"] == mixed]
    assert (reply.trace_id, reply.parent_span_id) == malformed_span.ids
    assert reply.attributes["realmate.message.ids"] == [first, malformed, last]
    assert mixed_post.headers["traceparent"].split("-")[1:3] == list(reply.ids)
    assert "traceparent" not in dropped_post.headers
    assert not [s for s in collector.spans_named("reply") if s.attributes["realmate.conversation.id"] == dropped]
    [[reply_traceparent]] = stack.sql(
        "SELECT traceparent FROM chat_message WHERE conversation_id = %s AND type = 'OUTBOUND'", (dropped,)
    )
    assert reply_traceparent == ""
