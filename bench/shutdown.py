"""SIGTERM for the benchmark scripts: `kill` or `timeout` must leave no gunicorn, Celery or Redis behind."""

import signal
import sys


def sigterm_exits() -> None:
    """Make SIGTERM raise SystemExit in the main thread, as Ctrl-C raises KeyboardInterrupt: the script's `finally`
    then stops the processes it started and drops its databases. By default SIGTERM ends Python at once."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
