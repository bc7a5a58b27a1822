from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP contract: the webhook, the read API and the web console's endpoints. It depends on chat (the
    conversations) and delivery (where each reply stands), which know nothing of it."""

    name = "api"
    verbose_name = "HTTP API"
