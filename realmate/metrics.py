"""Prometheus metrics (prometheus_client), served at /metrics by realmate.metrics_view; docs/operations.md says
what each means and which alerts to build on them.

Every process that counts (gunicorn's workers, Celery's pool processes, beat) writes its own file under
PROMETHEUS_MULTIPROC_DIR, the scrape adds them up (prometheus_client's multiprocess mode). In docker compose the
directory is in a volume every role mounts, so files are named by host name and pid: two containers may run
processes with the same pid. Only counters and histograms are kept this way; the gauges (pending and parked
messages, the last sweep) are read from PostgreSQL at scrape time (DatabaseCollector), so they are exact and
need no bookkeeping when a process dies.
"""

import os
import socket

from django.db import connection
from prometheus_client import Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Made by whichever process imports this first: a role, or a management command run by hand.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    # Must run before the first metric below is built: each metric picks its value class when it is created.
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: f"{socket.gethostname()}_{os.getpid()}")

WEBHOOK_REQUESTS = Counter(
    "realmate_webhook_requests",
    "Webhook requests by event type and outcome (stored, parked, duplicate, created, closed, or the error code).",
    ["event", "outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "realmate_webhook_request_seconds",
    "Time to answer a webhook request, in the view (body read, validation, database, rendering).",
    ["event"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REPLY_LAG_SECONDS = Histogram(
    "realmate_reply_lag_seconds",
    "From the last arrival of a group to its reply being written (GROUP_WINDOW_SECONDS at best).",
    buckets=(1, 2, 3, 4, 5, 5.25, 5.5, 6, 7, 8, 10, 15, 30, 60, 120),
)
REPLY_MESSAGES = Histogram(
    "realmate_reply_messages",
    "INBOUND messages answered by one reply.",
    buckets=(1, 2, 3, 5, 10, 20, 50, 100),
)
REPLIES = Counter("realmate_replies", "Replies written, by why they were sent.", ["send_reason"])
SWEEP_SECONDS = Histogram(
    "realmate_sweep_seconds",
    "Duration of one sweep (attach, expire, wake the reply engine).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REPLY_BATCH_SECONDS = Histogram(
    "realmate_reply_batch_seconds",
    "Duration of one reply batch (claim, read, decide, write, commit): how long its conversations are locked.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
REPLY_BATCH_REPLIES = Histogram(
    "realmate_reply_batch_replies",
    "Replies written by one reply batch.",
    buckets=(0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
DELIVERY_ATTEMPTS = Counter(
    "realmate_reply_delivery_attempts",
    "Reply delivery attempts by outcome (delivered, retry, failed); with REPLY_WEBHOOK_URL set.",
    ["outcome"],
)
DELIVERY_BATCH_SECONDS = Histogram(
    "realmate_reply_delivery_batch_seconds",
    "Duration of one delivery batch (claim, POSTs, settle).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CIRCUIT_OPENINGS = Counter("realmate_receiver_circuit_openings", "Times the receiver's circuit breaker opened.")


class DatabaseCollector:
    """Gauges read from PostgreSQL when /metrics is scraped: one query, exact whatever process wrote the rows."""

    def collect(self):
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT
                    (SELECT count(*) FROM chat_message WHERE pending),
                    (SELECT count(*) FROM chat_pendingmessage WHERE state = 'PARKED'),
                    (SELECT count(*) FROM delivery_replydelivery WHERE state = 'pending'),
                    (SELECT count(*) FROM delivery_replydelivery WHERE state = 'failed'),
                    (SELECT extract(epoch FROM last_sweep_at) FROM scheduler_sweepheartbeat WHERE id = 1),
                    (SELECT opened_at IS NOT NULL FROM delivery_receivercircuit WHERE id = 1)
                """
            )
            pending, parked, deliveries_pending, deliveries_failed, last_sweep, circuit_open = cursor.fetchone()
        yield GaugeMetricFamily("realmate_messages_pending", "INBOUND messages waiting for their reply.", pending)
        yield GaugeMetricFamily(
            "realmate_messages_parked", "Messages waiting for their conversation to be created.", parked
        )
        deliveries = GaugeMetricFamily("realmate_reply_deliveries", "Reply deliveries not delivered.", labels=["state"])
        deliveries.add_metric(["pending"], deliveries_pending)
        deliveries.add_metric(["failed"], deliveries_failed)
        yield deliveries
        yield GaugeMetricFamily(
            "realmate_receiver_circuit_open",
            "1 while the receiver's circuit breaker is open (deliveries held back, one probe every few seconds).",
            int(bool(circuit_open)),
        )
        if last_sweep is not None:
            yield GaugeMetricFamily(
                "realmate_last_sweep_timestamp_seconds",
                "When the last sweep completed (Unix time); time() minus this is the sweeper's staleness.",
                float(last_sweep),
            )
