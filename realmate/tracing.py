"""Traces on, in one process, when OTEL_EXPORTER_OTLP_ENDPOINT is set (what the spans hold: core.tracing).

Off (the default), nothing here runs but an environment lookup: the SDK is not even imported, and the API's calls in
the services are no-ops. On, spans go to the endpoint over OTLP/HTTP in batches from a background thread, and the
SDK reads its own variables (OTEL_TRACES_SAMPLER and _ARG for the share kept, OTEL_BSP_* for the batches,
OTEL_SERVICE_NAME). gunicorn calls start() in each worker as it loads the WSGI app (realmate.wsgi), Celery in each
pool process (realmate.celery), so no exporter thread crosses a fork.
"""

import os

# Requests that would only fill the traces: the container healthcheck and the Prometheus scrape every few seconds,
# and static files. OTEL_PYTHON_DJANGO_EXCLUDED_URLS replaces the list.
EXCLUDED_URLS = "/healthz,/metrics,/static/"

_provider = None


def enabled() -> bool:
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"  # as the SDK reads it
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")) and not disabled


def start(service: str, *, django: bool = False) -> None:
    """Install the tracer provider and its exporter (and, for the web process, the Django instrumentation, before
    the WSGI app reads its middleware). `service` is the service.name unless OTEL_SERVICE_NAME says otherwise."""
    global _provider
    if not enabled() or _provider is not None:
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(_provider)
    if django:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        excluded = os.environ.get("OTEL_PYTHON_DJANGO_EXCLUDED_URLS", EXCLUDED_URLS)
        DjangoInstrumentor().instrument(excluded_urls=excluded)


def stop() -> None:
    """Send what is still buffered (a pool process may exit without running atexit handlers)."""
    if _provider is not None:
        _provider.shutdown()
