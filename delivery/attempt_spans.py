"""The span of each delivery attempt, when traces are on (core.tracing): a child of its reply's span (the reply's
row holds its traceparent, scheduler.reply_spans), recorded after the batch with the POST's own start and duration
(client.ReceiverAnswer), so the client's event loop carries no tracing code. An attempt of an untraced reply, or one
the batch did not send, has none."""

from opentelemetry.trace import SpanKind, Status, StatusCode

from core import tracing
from delivery.client import ReceiverAnswer
from delivery.queries import Claimed

NANOSECONDS = 1_000_000_000


def attempt_spans_record(replies: list[Claimed], answers: list[ReceiverAnswer | None]) -> None:
    for reply, answer in zip(replies, answers, strict=True):
        if answer is None or (context := tracing.span_context(reply.traceparent)) is None:
            continue
        started = int(answer.started_at * NANOSECONDS)
        span = tracing.tracer.start_span(
            "POST reply",
            context=tracing.child_of(context),
            kind=SpanKind.CLIENT,
            start_time=started,
            attributes={
                tracing.ATTRIBUTE_REPLY: str(reply.message_id),
                tracing.ATTRIBUTE_CONVERSATION: str(reply.conversation_id),
                tracing.ATTRIBUTE_ATTEMPT: reply.attempt,
                "http.request.method": "POST",
            },
        )
        if answer.status is not None:
            span.set_attribute("http.response.status_code", answer.status)
        if not answer.delivered:
            span.set_status(Status(StatusCode.ERROR, answer.error))
        span.end(end_time=started + int(answer.seconds * NANOSECONDS))
