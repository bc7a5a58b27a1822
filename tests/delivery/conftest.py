import pytest

from delivery import circuit
from tests.receiver import Receiver

SECRET = "reply-secret"


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def delivery_on(settings, receiver, monkeypatch):
    """Reply delivery to `receiver`, signed with SECRET, with short timeouts and waits."""
    settings.REPLY_WEBHOOK_URL = receiver.url
    settings.REPLY_WEBHOOK_SECRET = SECRET
    settings.REPLY_WEBHOOK_TIMEOUT_SECONDS = 1.0
    settings.REPLY_DELIVERY_BACKOFF_SECONDS = 1
    settings.REPLY_DELIVERY_BACKOFF_MAX_SECONDS = 4
    monkeypatch.setattr(circuit, "CIRCUIT_FAILURES", 3)
    settings.REPLY_CIRCUIT_PROBE_SECONDS = 1.0
    return settings
