"""A real OTLP/HTTP trace receiver on 127.0.0.1, as a collector would be: it decodes each export (protobuf, the
SDK's default) and keeps its spans, or only counts them (`keep=False`, for benchmarks).

receiver = OtlpReceiver().start()
env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
receiver.spans_named("reply")       # the spans received so far with that name
receiver.stop()
"""

import gzip
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    # (trace_id, span_id) of each linked span
    links: tuple[tuple[str, str], ...]
    attributes: dict = field(hash=False)
    start_ns: int
    end_ns: int
    # 0 unset, 1 ok, 2 error (OTLP's status codes)
    status: int

    @property
    def ids(self) -> tuple[str, str]:
        return self.trace_id, self.span_id


def traceparent_ids(traceparent: str) -> tuple[str, str]:
    """The (trace id, span id) a W3C traceparent names (its flags are not exported: compare spans by ids)."""
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


class OtlpReceiver:
    def __init__(self, *, keep: bool = True) -> None:
        self.port = 0  # chosen by the system as it starts
        self.keep = keep
        self.spans: list[ReceivedSpan] = []
        self.count = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "OtlpReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.received(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def received(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            service = _attributes(resource_spans.resource.attributes).get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                spans += [_span(service, span) for span in scope_spans.spans]
        with self.lock:
            self.count += len(spans)
            if self.keep:
                self.spans += spans

    def spans_named(self, name: str) -> list[ReceivedSpan]:
        with self.lock:
            return [span for span in self.spans if span.name == name]


def _span(service: str, span) -> ReceivedSpan:
    return ReceivedSpan(
        service=service,
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
        attributes=_attributes(span.attributes),
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        status=span.status.code,
    )


def _attributes(key_values) -> dict:
    return {item.key: _value(item.value) for item in key_values}


def _value(value: AnyValue):
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None
