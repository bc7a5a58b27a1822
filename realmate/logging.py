"""One JSON object per log line, so logs can be searched by conversation or message id."""

import json
import logging
from datetime import UTC, datetime

from core.liveness import HEALTHCHECK_USER_AGENT

# Attributes every LogRecord has; anything else was passed through `extra=` and belongs in the line.
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({key: value for key, value in vars(record).items() if key not in _RESERVED})
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class SkipHealthcheckAccess(logging.Filter):
    """Drops gunicorn's access line for the container healthcheck (bin/healthcheck, every few seconds); other
    requests to /healthz, a load balancer's for instance, are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        atoms = record.args
        return not (isinstance(atoms, dict) and atoms.get("a") == HEALTHCHECK_USER_AGENT)
