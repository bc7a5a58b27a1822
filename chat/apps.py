import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)


class ChatConfig(AppConfig):
    name = "chat"
    verbose_name = "Conversations"

    def ready(self) -> None:
        if not settings.WEBHOOK_SECRET:
            logger.warning(
                "WEBHOOK_SECRET is not set: webhooks are accepted without a signature. "
                "Set it to require X-Hub-Signature-256 on every request."
            )
