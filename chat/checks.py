"""System checks of the chat app: configuration that works but that an operator must know about, and that would
do harm.

Django prints check warnings when a command that checks the project runs: the web role's `migrate`, once per
start (bin/entrypoint.sh), and `manage.py check`.
"""

import math

from django.conf import settings
from django.core.checks import Error, Warning, register

from core.signing import secrets_problems


@register()
def webhook_secret_check(app_configs, **kwargs) -> list[Warning]:
    if settings.WEBHOOK_SECRET:
        return []
    return [
        Warning(
            "WEBHOOK_SECRET is not set: webhooks are accepted without a signature.",
            hint="Set WEBHOOK_SECRET to require a signature (Standard Webhooks or X-Hub-Signature-256) on every "
            "webhook.",
            id="chat.W001",
        )
    ]


@register()
def webhook_secret_format_check(app_configs, **kwargs) -> list[Error]:
    problems = [
        Error(f"WEBHOOK_SECRET: {problem}.", hint="Write whsec_ and a base64 key, or a plain secret.", id="chat.E002")
        for problem in secrets_problems(settings.WEBHOOK_SECRET)
    ]
    tolerance = settings.WEBHOOK_TOLERANCE_SECONDS
    if not (math.isfinite(tolerance) and tolerance > 0):
        problems.append(
            Error(
                f"WEBHOOK_TOLERANCE_SECONDS is {tolerance}: it would refuse every Standard Webhooks request or none.",
                hint="Set a number of seconds above 0 (300 by default).",
                id="chat.E003",
            )
        )
    return problems


@register()
def retention_check(app_configs, **kwargs) -> list[Error]:
    days = settings.CONVERSATION_RETENTION_DAYS
    if days is None or days > 0:
        return []
    return [
        Error(
            f"CONVERSATION_RETENTION_DAYS is {days:g}: the daily purge would erase every conversation not in use.",
            hint="Set a number of days above 0, or leave it empty to keep conversations forever.",
            id="chat.E001",
        )
    ]
