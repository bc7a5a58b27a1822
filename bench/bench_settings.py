"""Production settings plus one baseline endpoint, for bench/webhook_bench.py only."""

from realmate.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
