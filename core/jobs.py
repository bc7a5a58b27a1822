"""Enqueueing a wake-up job without failing the caller, for every app that sends them (scheduler, delivery)."""

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


def enqueue_safely(enqueue: Callable[..., None], *arguments) -> bool:
    """Call `enqueue`; False when the job could not be sent. Not an error: jobs are wake-up calls, the rows they
    would look at are in PostgreSQL, and the next sweep sends another once Redis is back."""
    try:
        enqueue(*arguments)
    except Exception:
        logger.exception(
            "job not enqueued: the next sweep sends another", extra={"job": getattr(enqueue, "__name__", "")}
        )
        return False
    return True
