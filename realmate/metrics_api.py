"""GET /metrics: the Prometheus text format, behind the same switch as the read API (realmate.access.ReadAccess:
open unless API_AUTH_REQUIRED; then a token, e.g. Prometheus' `authorization: {type: Token, credentials: ...}`)."""

import os

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from realmate.metrics import DatabaseCollector


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
        database = CollectorRegistry(auto_describe=True)
        database.register(DatabaseCollector())
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Every process's files, the dead ones' included: counters keep counting across restarts.
            processes = CollectorRegistry()
            multiprocess.MultiProcessCollector(processes)
        else:
            processes = REGISTRY  # one process (tests, a shell): its own counters
        return HttpResponse(generate_latest(processes) + generate_latest(database), content_type=CONTENT_TYPE_LATEST)
