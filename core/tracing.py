"""What the services add to traces (OpenTelemetry), and how a span is carried across processes through a row.

Traces are on only when OTEL_EXPORTER_OTLP_ENDPOINT is set: realmate.tracing starts the SDK in each process then.
Off, the OpenTelemetry API is a no-op: the current span is the invalid one, nothing is recorded or sent, and
traceparent() is '' (a message stores no trace).

One message's story is one trace: the webhook request that stored it (Django's server span, the message's ids as
attributes), the reply that answered its group (a child of that request's span) and each delivery attempt of the
reply (children of the reply). The reply runs in a worker, seconds later, and the attempt in another process: the
message's row carries its request span's W3C traceparent to the reply batch, and the reply's row its own to
delivery. The realmate.* attributes are named by the ATTRIBUTE_* constants, but a reply batch's, which are its log
line's fields (realmate.batch.<field>).
"""

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

ATTRIBUTE_EVENT = "realmate.event.type"
ATTRIBUTE_OUTCOME = "realmate.webhook.outcome"
ATTRIBUTE_CONVERSATION = "realmate.conversation.id"
ATTRIBUTE_MESSAGE = "realmate.message.id"
ATTRIBUTE_MESSAGES = "realmate.message.ids"
ATTRIBUTE_REPLY = "realmate.reply.id"
ATTRIBUTE_REPLY_REASON = "realmate.reply.reason"
ATTRIBUTE_REPLY_DUE_AT = "realmate.reply.due_at"
ATTRIBUTE_REPLY_LAG = "realmate.reply.lag_seconds"
ATTRIBUTE_ATTEMPT = "realmate.delivery.attempt"

tracer = trace.get_tracer("realmate")
_propagator = TraceContextTextMapPropagator()


def traceparent(span: Span | None = None) -> str:
    """The W3C traceparent of `span` (the current one by default) when it is sampled, '' otherwise: what a row
    stores so that later work in another process can join the trace."""
    span = span or trace.get_current_span()
    if not span.get_span_context().trace_flags.sampled:
        return ""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def span_context(traceparent: str) -> SpanContext | None:
    """The span a stored traceparent names (None for '' or a value that does not parse)."""
    if not traceparent:
        return None
    context = trace.get_current_span(_propagator.extract({"traceparent": traceparent})).get_span_context()
    return context if context.is_valid else None


def child_of(context: SpanContext):
    """A context whose parent is the span `context` names (from another process): for tracer.start_span()."""
    return trace.set_span_in_context(NonRecordingSpan(context))


def links(contexts: list[SpanContext]) -> list[Link]:
    return [Link(context) for context in contexts]


def attributes_set(attributes: Mapping[str, AttributeValue]) -> None:
    """Add attributes to the current span, when it is recorded (nothing is built otherwise)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)


def ids_set(*, conversation_id: object = None, message_id: object = None) -> None:
    """Name the conversation and message the current span is about, when it is recorded: the attributes an operator
    searches traces by."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    if conversation_id is not None:
        span.set_attribute(ATTRIBUTE_CONVERSATION, str(conversation_id))
    if message_id is not None:
        span.set_attribute(ATTRIBUTE_MESSAGE, str(message_id))
