"""core.tracing: what a row stores of the span in progress, and how it is read back. Spans come from an SDK provider
of the test's own (the process's global one stays the API's no-op: traces are off in the tests)."""

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from core import tracing


def test_without_a_span_nothing_is_stored():
    assert tracing.traceparent() == ""


def test_a_sampled_span_is_stored_as_its_w3c_traceparent_and_read_back():
    span = TracerProvider(sampler=ALWAYS_ON).get_tracer("test").start_span("webhook")
    context = span.get_span_context()

    with trace.use_span(span, end_on_exit=True):
        stored = tracing.traceparent()

    assert stored.startswith(f"00-{context.trace_id:032x}-{context.span_id:016x}-")
    assert tracing.span_context(stored).span_id == context.span_id
    assert tracing.span_context(stored).is_remote


def test_a_span_the_sampler_dropped_is_not_stored():
    span = TracerProvider(sampler=ALWAYS_OFF).get_tracer("test").start_span("webhook")

    with trace.use_span(span, end_on_exit=True):
        assert tracing.traceparent() == ""


def test_a_stored_value_that_does_not_parse_names_no_span():
    assert tracing.span_context("") is None
    assert tracing.span_context("not a traceparent") is None
    assert tracing.span_context("00-00000000000000000000000000000000-0000000000000000-01") is None
