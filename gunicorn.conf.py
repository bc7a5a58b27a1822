"""gunicorn reads this file from the working directory (bin/entrypoint.sh runs from the repo root): its own
log lines become JSON like the application's (realmate.logging.JsonFormatter), without an access line for each
container healthcheck."""

import gc

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "realmate.logging.JsonFormatter"}},
    "filters": {"skip_healthcheck": {"()": "realmate.logging.SkipHealthcheckAccess"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {
            "handlers": ["console"],
            "level": "INFO",
            "propagate": False,
            "filters": ["skip_healthcheck"],
        },
    },
}


def post_worker_init(worker):
    """Move everything loaded at startup (Django, DRF, the URL conf: ~70k objects) out of the garbage collector's
    reach, so full collections stop scanning them again and again: such pauses land in the p99 latency (bench/README.md,
    "Measured in-process")."""
    gc.freeze()
