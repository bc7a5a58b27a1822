"""Liveness files: the worker and beat touch theirs while they work; `bin/healthcheck` reads their age.

A file, not a broker round trip: the check runs every few seconds in each container and must cost nothing
(`celery inspect ping` starts Django and Celery, about a second of CPU each time).
"""

import os
import tempfile
import time
from pathlib import Path

# What bin/healthcheck calls itself on /healthz; gunicorn logs no access line for it (realmate.logging).
HEALTHCHECK_USER_AGENT = "realmate-healthcheck"


def liveness_path(role: str) -> Path:
    return Path(os.environ.get("HEALTH_FILE_DIR") or tempfile.gettempdir()) / f"realmate-{role}.alive"


def liveness_touch(role: str) -> None:
    try:
        liveness_path(role).touch()
    except OSError:
        pass  # a liveness file that cannot be written makes the healthcheck fail, which says enough


def liveness_age(role: str) -> float | None:
    """Seconds since `role` last touched its file; None when it never did."""
    try:
        return time.time() - liveness_path(role).stat().st_mtime
    except FileNotFoundError:
        return None
