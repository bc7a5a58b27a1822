import json
import uuid

import pytest
from rest_framework.test import APIClient


class WebhookClient:
    """Posts raw bodies to /webhook/ through Django's test client (the full middleware stack)."""

    def __init__(self, client: APIClient) -> None:
        self.client = client

    def post(self, payload, path: str = "/webhook/", **headers):
        body = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        return self.client.generic("POST", path, body, content_type="application/json", headers=headers)


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def webhook(api) -> WebhookClient:
    return WebhookClient(api)


@pytest.fixture
def new_id():
    return lambda: uuid.uuid4()
