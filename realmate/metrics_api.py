"""GET /metrics: the Prometheus text format, behind the same switch as the read API (api.access.ReadAccess:
open unless API_AUTH_REQUIRED; then a token, e.g. Prometheus' `authorization: {type: Token, credentials: ...}`).

Counters and histograms come from every process's files. bin/entrypoint.sh gives each host (each container) a
directory of its own under the shared one, so the scrape adds up the files of every directory beside its own.
Gauges are read from PostgreSQL, through each app's selectors, when the page is scraped: exact whatever process
wrote the rows, and nothing to clean up when a process dies.
"""

import os
from pathlib import Path

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from chat.selectors import conversations_paused_count, messages_pending_count, parked_messages_count
from delivery.selectors import deliveries_undelivered_count, receiver_state
from scheduler.selectors import sweep_last


class ProcessFilesCollector:
    """Every process's counters, across the hosts that share the metrics directory: the dead processes' included,
    so counters keep counting across restarts. prometheus_client's MultiProcessCollector reads one directory;
    its merge adds up any list of files."""

    def __init__(self, hosts_directory: Path) -> None:
        self.hosts_directory = hosts_directory

    def collect(self):
        return MultiProcessCollector.merge(sorted(map(str, self.hosts_directory.glob("*/*.db"))), accumulate=True)


class DatabaseCollector:
    """Gauges read from PostgreSQL when /metrics is scraped."""

    def collect(self):
        yield GaugeMetricFamily(
            "realmate_messages_pending", "INBOUND messages waiting for their reply.", messages_pending_count()
        )
        yield GaugeMetricFamily(
            "realmate_messages_parked",
            "Messages waiting for their conversation to be created.",
            parked_messages_count(),
        )
        yield GaugeMetricFamily(
            "realmate_conversations_paused",
            "Conversations a person has now: the bot answers none of their messages (AGENT_MESSAGE, PAUSE_BOT, a "
            "handoff word).",
            conversations_paused_count(),
        )
        deliveries = GaugeMetricFamily("realmate_reply_deliveries", "Reply deliveries not delivered.", labels=["state"])
        for state, count in deliveries_undelivered_count().items():
            deliveries.add_metric([state], count)
        yield deliveries
        receiver = receiver_state()
        yield GaugeMetricFamily(
            "realmate_receiver_circuit_open",
            "1 while the receiver's circuit breaker is open (deliveries held back, one probe every few seconds).",
            int(receiver.opened_at is not None),
        )
        yield GaugeMetricFamily(
            "realmate_receiver_disabled",
            "1 while the receiver is disabled: it answered 410 Gone, and nothing is sent until an operator enables it.",
            int(receiver.disabled_at is not None),
        )
        if (last_sweep := sweep_last()) is not None:
            yield GaugeMetricFamily(
                "realmate_last_sweep_timestamp_seconds",
                "When the last sweep completed (Unix time); time() minus this is the sweeper's staleness.",
                last_sweep[0].timestamp(),
            )


class NoContentNegotiation(BaseContentNegotiation):
    """The page has one format whatever a scraper accepts (Prometheus asks for text/plain or OpenMetrics), and
    errors render as JSON: DRF's documented way to skip negotiation for a view."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricsApi(APIView):
    renderer_classes = [JSONRenderer]
    content_negotiation_class = NoContentNegotiation

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse:
        database = CollectorRegistry(auto_describe=False)  # so registering does not run the queries a first time
        database.register(DatabaseCollector())
        if own_directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            processes = CollectorRegistry()
            processes.register(ProcessFilesCollector(Path(own_directory).parent))
        else:
            processes = REGISTRY  # one process (tests, a shell): its own counters
        return HttpResponse(generate_latest(processes) + generate_latest(database), content_type=CONTENT_TYPE_LATEST)
