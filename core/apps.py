from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every other app shares: the database clock, HMAC signing, the domain error and the error body,
    serializer fields, metrics, job enqueueing and the read-only admin. It imports none of them."""

    name = "core"
    verbose_name = "Core"
