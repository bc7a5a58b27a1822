"""System checks of reply delivery: a URL that cannot work is an error at start, not a failed delivery later."""

import math

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from core.signing import secrets_problems


@register()
def reply_webhook_check(app_configs, **kwargs) -> list:
    url = settings.REPLY_WEBHOOK_URL
    if not url:
        return []
    problems = []
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        problems.append(
            Error(
                f"REPLY_WEBHOOK_URL is not an http(s) URL: {url!r}.",
                hint="Set it to the receiver's address, e.g. https://chat.example.com/replies, or leave it empty.",
                id="delivery.E001",
            )
        )
    for name in ("REPLY_DELIVERY_BATCH", "REPLY_WEBHOOK_CONCURRENCY"):
        if getattr(settings, name) < 1:
            problems.append(
                Error(
                    f"{name} must be at least 1.",
                    hint="With 0 no reply would ever be sent.",
                    id="delivery.E003",
                )
            )
    rate = settings.REPLY_WEBHOOK_RATE
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        problems.append(
            Error(
                f"REPLY_WEBHOOK_RATE must be a number of messages a second above 0, not {rate!r}.",
                hint="E.g. 80 for Meta's limit per number; leave it empty for no limit.",
                id="delivery.E005",
            )
        )
    if not settings.REPLY_WEBHOOK_SECRET:
        problems.append(
            Warning(
                "REPLY_WEBHOOK_SECRET is not set: replies are POSTed without a signature.",
                hint="Set it (a whsec_ key) so the receiver can check the Standard Webhooks signature.",
                id="delivery.W001",
            )
        )
    problems += [
        Error(
            f"REPLY_WEBHOOK_SECRET: {problem}.",
            hint="Write whsec_ and a base64 key, or a plain secret.",
            id="delivery.E004",
        )
        for problem in secrets_problems(settings.REPLY_WEBHOOK_SECRET)
    ]
    return problems
