"""The circuit breaker in front of the receiver, its state one row in PostgreSQL (ReceiverCircuit), shared by every
delivery process.

Closed, batches go out. CIRCUIT_FAILURES receiver failures in a row (timeouts, connection errors, 408, 429,
5xx) open it: then a single probe, one due reply, goes out every REPLY_CIRCUIT_PROBE_SECONDS and nothing else does,
so an outage costs the receiver a probe every few seconds instead of every waiting reply on its own backoff. The
first probe that gets any other answer closes it, and the backlog, still due, goes out at full speed. Other 4xx
answers neither open nor hold it open: they are about one reply, and they show that the receiver is up.

A 410 Gone is the receiver saying it is no longer there (Standard Webhooks' and Svix's meaning): the endpoint is
disabled, nothing is sent, not even probes, until an operator enables it (receiver_enable); the replies wait,
pending, and their give_up_at still applies.
"""

import enum
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from core import metrics

logger = logging.getLogger(__name__)

# Receiver failures in a row that open the circuit; also the POSTs a batch starts with (all a dead receiver gets).
CIRCUIT_FAILURES = 5


class Admission(enum.Enum):
    BATCH = "batch"  # closed: send a batch
    PROBE = "probe"  # open, and this caller won the probe: send one reply
    NONE = "none"  # open, probe not due yet (or another caller has it), or disabled: send nothing


# The receiver's answer that disables it.
GONE = 410
# Who may enable it again (the admin's action, the API).
ENABLE_PERMISSION = "delivery.change_receivercircuit"


@dataclass(frozen=True)
class Pass:
    admission: Admission
    # Receiver failures in a row before this batch: the batch stops starting POSTs once it brings them to the limit.
    failures: int


def circuit_opens(failures: int) -> bool:
    """The rule: this many receiver failures in a row open the circuit (or keep it open)."""
    return failures >= CIRCUIT_FAILURES


def circuit_pass() -> Pass:
    """May this caller send, and how much? One statement: while open, whoever finds the probe due takes it and sets
    the next one, so of several delivery processes only one probes."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH probe AS (
                UPDATE delivery_receivercircuit
                SET probe_at = clock_timestamp() + make_interval(secs => %s)
                WHERE id = 1 AND opened_at IS NOT NULL AND probe_at <= clock_timestamp() AND disabled_at IS NULL
                RETURNING 1
            )
            SELECT opened_at IS NOT NULL, failures, EXISTS (SELECT FROM probe), disabled_at IS NOT NULL
            FROM delivery_receivercircuit WHERE id = 1
            """,
            [settings.REPLY_CIRCUIT_PROBE_SECONDS],
        )
        row = cursor.fetchone()
    if row is None:  # never written: closed
        return Pass(Admission.BATCH, 0)
    is_open, failures, probing, disabled = row
    if disabled:
        return Pass(Admission.NONE, failures)
    if not is_open:
        return Pass(Admission.BATCH, failures)
    return Pass(Admission.PROBE if probing else Admission.NONE, failures)


def circuit_record(*, answered: bool, failures_since: int, error: str) -> None:
    """After a batch, in its settling transaction: `answered` when the receiver gave any answer that is not a
    receiver failure, `failures_since` the receiver failures that came after the last such answer (or in all)."""
    if not answered and not failures_since:
        return  # nothing was sent
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT failures, opened_at IS NOT NULL FROM delivery_receivercircuit WHERE id = 1 FOR UPDATE")
        row = cursor.fetchone()
        before, was_open = row or (None, False)
        failures = (0 if answered else before or 0) + failures_since
        opens = circuit_opens(failures)
        if failures == before and not opens and not was_open:
            return  # closed, and the count is unchanged: nothing to write (a healthy receiver's common case)
        cursor.execute(
            """
            INSERT INTO delivery_receivercircuit AS c (id, failures, opened_at, probe_at, last_error)
            VALUES (
                1, %(failures)s,
                CASE WHEN %(opens)s THEN clock_timestamp() END,
                CASE WHEN %(opens)s THEN clock_timestamp() + make_interval(secs => %(probe)s) END,
                %(error)s
            )
            ON CONFLICT (id) DO UPDATE SET
                failures = excluded.failures,
                -- An open circuit keeps its opening time and the probe time its last pass set.
                opened_at = CASE WHEN %(opens)s THEN coalesce(c.opened_at, excluded.opened_at) END,
                probe_at = CASE WHEN %(opens)s THEN coalesce(c.probe_at, excluded.probe_at) END,
                last_error = excluded.last_error
            """,
            {"failures": failures, "opens": opens, "probe": settings.REPLY_CIRCUIT_PROBE_SECONDS, "error": error[:500]},
        )
    if opens and not was_open:
        metrics.CIRCUIT_OPENINGS.inc()
        logger.warning("receiver circuit opened: holding deliveries back", extra={"failures": failures, "error": error})
    elif was_open and not opens:
        logger.info("receiver circuit closed: the receiver answers again")


def receiver_disable(error: str) -> None:
    """The receiver answered 410 Gone: stop sending until an operator enables it. Counted once per disabling, when
    the transaction commits."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH before AS (SELECT disabled_at FROM delivery_receivercircuit WHERE id = 1)
            INSERT INTO delivery_receivercircuit AS c (id, failures, last_error, disabled_at)
            VALUES (1, 0, %(error)s, clock_timestamp())
            ON CONFLICT (id) DO UPDATE SET
                disabled_at = coalesce(c.disabled_at, excluded.disabled_at), last_error = excluded.last_error
            RETURNING NOT EXISTS (SELECT FROM before WHERE disabled_at IS NOT NULL)
            """,
            {"error": error[:500]},
        )
        newly = cursor.fetchone()[0]
    if newly:
        transaction.on_commit(metrics.RECEIVER_DISABLINGS.inc)
        logger.warning("receiver disabled: it answered 410 Gone; deliveries wait until enabled", extra={"error": error})


def receiver_enable() -> bool:
    """An operator's enable: the receiver gets the waiting replies again, its circuit closed. True when it was
    disabled."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE delivery_receivercircuit SET disabled_at = NULL, opened_at = NULL, probe_at = NULL, failures = 0 "
            "WHERE id = 1 AND disabled_at IS NOT NULL"
        )
        enabled = cursor.rowcount > 0
    if enabled:
        logger.info("receiver enabled: deliveries go out again")
    return enabled


class FailureRun:
    """Receiver failures in a row, counted as a batch's answers arrive: the batch starts no more POSTs once the run,
    with the one it started from, reaches CIRCUIT_FAILURES (its caller then opens the circuit)."""

    def __init__(self, before: int) -> None:
        self.run = before
        # Failures since the last answer of this batch that was not one (all of them when there was none).
        self.since = 0
        self.answered = False
        self.last_error = ""
        # The error of a 410 Gone, which disables the receiver (None: there was none).
        self.gone: str | None = None

    def keep_sending(self, answer) -> bool:
        if answer.status == GONE:
            self.gone = answer.error
            return False
        if answer.retryable:
            self.run += 1
            self.since += 1
            self.last_error = answer.error
        else:
            self.run = self.since = 0
            self.answered = True
        return not circuit_opens(self.run)
