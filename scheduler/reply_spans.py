"""The spans of a reply batch, when traces are on (core.tracing).

A reply gets a span when a message it answers was traced: a child of the newest traced message's webhook request, so
that message's trace goes on to the reply that answered it; linked to the other messages' requests and to the batch
that wrote it. The span is started as the batch writes the replies and ended once the batch commits: a batch that
rolls back ends none, so it sends none. The reply's row stores the span's traceparent, which delivery's attempts
continue (delivery.attempt_spans).
"""

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span

from core import tracing

if TYPE_CHECKING:
    from scheduler.replies import Reply


class ReplySpans:
    def __init__(self, spans: dict[uuid.UUID, Span]) -> None:
        self.spans = spans

    @classmethod
    def start(cls, replies: Iterable["Reply"], message_traces: dict[uuid.UUID, str]) -> "ReplySpans":
        """A span for each reply with a traced message; `message_traces` holds the traceparent of each traced
        message (untraced ones are absent: with traces off, it is empty and nothing is done)."""
        if not message_traces:
            return cls({})
        batch = trace.get_current_span()
        batch_links = [batch.get_span_context()] if batch.is_recording() else []
        spans = {}
        for reply in replies:
            contexts = [
                context
                for message_id in reply.answers
                if (context := tracing.span_context(message_traces.get(message_id, "")))
            ]
            if not contexts:
                continue
            span = tracing.tracer.start_span(
                "reply",
                context=tracing.child_of(contexts[-1]),
                links=tracing.links(batch_links + contexts[:-1]),
                attributes={
                    tracing.ATTRIBUTE_REPLY: str(reply.id),
                    tracing.ATTRIBUTE_CONVERSATION: str(reply.conversation_id),
                    tracing.ATTRIBUTE_MESSAGES: [str(message_id) for message_id in reply.answers],
                    tracing.ATTRIBUTE_REPLY_REASON: reply.send_reason,
                    tracing.ATTRIBUTE_REPLY_DUE_AT: reply.due_at.isoformat(),
                    tracing.ATTRIBUTE_REPLY_LAG: reply.lag,
                },
            )
            if span.is_recording():
                spans[reply.id] = span
        return cls(spans)

    def traceparent(self, reply_id: uuid.UUID) -> str:
        span = self.spans.get(reply_id)
        return "" if span is None else tracing.traceparent(span)

    def end(self) -> None:
        for span in self.spans.values():
            span.end()
