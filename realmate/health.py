"""GET /healthz: is PostgreSQL answering, is Redis answering, and has the sweeper swept recently? It also warns,
without failing, while the reply receiver's circuit is open: the service is fine, the receiver is not."""

from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from delivery.selectors import receiver_state
from scheduler.selectors import sweep_last, sweep_stale_seconds


def database_check() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except DatabaseError as exc:
        return {"ok": False, "error": str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}


def redis_check(client: redis.Redis) -> dict[str, Any]:
    try:
        client.ping()
        return {"ok": True}
    except redis.RedisError as exc:
        return {"ok": False, "error": str(exc)}


def sweep_backlog(client: redis.Redis) -> int | None:
    """Sweep jobs waiting in the broker (kombu keeps a Redis queue as a list of its name); None when unknown."""
    try:
        return client.llen(settings.SWEEP_QUEUE)
    except redis.RedisError:
        return None


def sweeper_check(database_ok: bool, backlog: Callable[[], int | None]) -> dict[str, Any]:
    if not database_ok:
        return {"ok": False, "error": "unknown: the database is unreachable"}
    last, stale = sweep_last(), sweep_stale_seconds()
    if last is None:
        check: dict[str, Any] = {"ok": False, "error": "no sweep has completed yet", "last_sweep_at": None}
    else:
        last_sweep_at, age = last
        check = {"ok": age < stale, "last_sweep_at": datetime.isoformat(last_sweep_at)}
        check["age_seconds"] = round(age, 3)
        if not check["ok"]:
            check["error"] = f"last sweep {age:.1f} s ago (limit {stale:g} s)"
    if not check["ok"] and (waiting := backlog()):
        # Beat sends sweeps but nothing takes them: e.g. every worker was started with --queues leaving it out.
        check["error"] += f"; {waiting} sweep jobs wait in the {settings.SWEEP_QUEUE!r} queue: no worker consumes it"
    return check


def receiver_check(database_ok: bool) -> dict[str, Any]:
    """Always ok (a receiver outage is not ours to fail for); a `warning` while its circuit is open or it is
    disabled (it answered 410 Gone)."""
    if not settings.REPLY_WEBHOOK_URL:
        return {"ok": True, "circuit": "off"}
    if not database_ok:
        return {"ok": True, "circuit": "unknown"}
    receiver = receiver_state()
    if receiver.disabled_at is not None:
        return {
            "ok": True,
            "circuit": "disabled",
            "disabled_at": datetime.isoformat(receiver.disabled_at),
            "warning": f"the reply receiver answered 410 Gone ({receiver.last_error}): nothing is sent until an "
            "operator enables it (admin or POST /api/receiver/enable/)",
        }
    if receiver.opened_at is None:
        return {"ok": True, "circuit": "closed"}
    return {
        "ok": True,
        "circuit": "open",
        "opened_at": datetime.isoformat(receiver.opened_at),
        "warning": f"the reply receiver keeps failing ({receiver.last_error}): deliveries wait, one probe every "
        f"{settings.REPLY_CIRCUIT_PROBE_SECONDS:g} s",
    }


_check = inline_serializer(
    "HealthCheck",
    {
        "ok": serializers.BooleanField(),
        "error": serializers.CharField(required=False),
        "last_sweep_at": serializers.DateTimeField(required=False, allow_null=True),
        "age_seconds": serializers.FloatField(required=False),
    },
)
_receiver = inline_serializer(
    "ReceiverCheck",
    {
        "ok": serializers.BooleanField(),
        "circuit": serializers.ChoiceField(choices=["off", "closed", "open", "disabled", "unknown"]),
        "opened_at": serializers.DateTimeField(required=False),
        "disabled_at": serializers.DateTimeField(required=False),
        "warning": serializers.CharField(required=False),
    },
)
_health = inline_serializer(
    "Health",
    {
        "status": serializers.ChoiceField(choices=["ok", "fail"]),
        "failing": serializers.ListField(child=serializers.CharField()),
        "warnings": serializers.ListField(child=serializers.CharField()),
        "checks": inline_serializer(
            "HealthChecks", {"database": _check, "redis": _check, "sweeper": _check, "receiver": _receiver}
        ),
    },
)


class HealthApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Health of PostgreSQL, Redis and the sweeper",
        responses={200: _health, 503: OpenApiResponse(_health, description="At least one part is failing.")},
    )
    def get(self, request: Request) -> Response:
        database = database_check()
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            checks = {
                "database": database,
                "redis": redis_check(client),
                "sweeper": sweeper_check(database["ok"], lambda: sweep_backlog(client)),
                "receiver": receiver_check(database["ok"]),
            }
        finally:
            client.close()
        failing = [name for name, check in checks.items() if not check["ok"]]
        warnings = [name for name, check in checks.items() if "warning" in check]
        body = {"status": "fail" if failing else "ok", "failing": failing, "warnings": warnings, "checks": checks}
        return Response(body, status=HTTPStatus.SERVICE_UNAVAILABLE if failing else HTTPStatus.OK)
