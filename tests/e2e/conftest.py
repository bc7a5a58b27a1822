import pytest

from tests.e2e.stack import Stack
from tests.receiver import Receiver

# Short windows for the stress and failure tests; the true 5 s / 6 s windows have their own stack.
SHORT_WINDOWS = {
    "GROUP_WINDOW_SECONDS": "1.0",
    "ORPHAN_TTL_SECONDS": "1.5",
    "SWEEP_INTERVAL_SECONDS": "0.25",
}


def running_stack(name: str, **kwargs):
    yield from started(Stack(name, **kwargs))


def started(stack: Stack):
    """Start the stack for a fixture, print its logs if starting failed, and stop it whatever happens."""
    try:
        yield stack.start()
    except Exception:
        print(stack.logs())
        raise
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def receiver():
    """A real reply receiver (tests/receiver.py) for the module's stack; each test scripts its own conversations."""
    receiver = Receiver().start()
    yield receiver
    receiver.stop()
