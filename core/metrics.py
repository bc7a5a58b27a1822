"""The counters and histograms every app updates (prometheus_client), served at /metrics by
realmate.metrics_api; docs/operations.md says what each means and which alerts to build on them.

Every process that counts (gunicorn's workers, Celery's pool processes, beat) writes its own file under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), and the scrape adds them up. The gauges
(pending and parked messages, deliveries, the last sweep) are not here: /metrics reads them from PostgreSQL.
"""

import os

from prometheus_client import Counter, Histogram

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Made by whichever process imports this first: a role, or a management command run by hand.
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

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
TAKEOVERS = Counter(
    "realmate_takeovers",
    "Times a person took a conversation over (the bot paused when it was not), by what began it: agent_message, "
    "pause_bot or handoff.",
    ["source"],
)
HANDOFFS = Counter(
    "realmate_handoffs",
    "NEW_MESSAGEs that asked for a person, by the HANDOFF_KEYWORDS entry they matched.",
    ["keyword"],
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
# At zero from the start: increase() sees the first failure only in a series that existed before it.
for _outcome in ("delivered", "retry", "failed"):
    DELIVERY_ATTEMPTS.labels(_outcome)
DELIVERY_BATCH_SECONDS = Histogram(
    "realmate_reply_delivery_batch_seconds",
    "Duration of one delivery batch (claim, POSTs, settle).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CIRCUIT_OPENINGS = Counter("realmate_receiver_circuit_openings", "Times the receiver's circuit breaker opened.")
RECEIVER_DISABLINGS = Counter(
    "realmate_receiver_disablings",
    "Times the receiver answered 410 Gone and was disabled until an operator enables it.",
)
REPLIES_RECOVERED = Counter(
    "realmate_replies_recovered",
    "Delivered or failed replies an operator's recovery made due again (delivery.recovery).",
)
