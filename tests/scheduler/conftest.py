import pytest

from scheduler.services import batch_size


@pytest.fixture(autouse=True)
def fresh_batch_size():
    """The batch size is kept per process (scheduler.services.batch_size): a test must not inherit another's."""
    batch_size.limit = None
    yield
    batch_size.limit = None
