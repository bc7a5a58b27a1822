"""Settings for the local run (make run): production-like, but DEBUG may be on and the key may be a dev key."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
