"""Property-based requests generated from our own OpenAPI schema (schemathesis): no input gives a 5xx.

Runs in-process through the WSGI application on the real test database, with a bounded number of examples
per operation so the suite stays fast. /healthz is left out: its 503 is a documented answer, not a bug.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).exclude(path="/healthz/")


@pytest.fixture
def _keep_test_connection():
    """The WSGI handler closes database connections at each request's end; inside a test transaction that
    would close the test's own connection. Django's test client switches this off the same way."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.mark.django_db
@pytest.mark.usefixtures("_keep_test_connection")
@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_generated_request_gets_a_server_error(case):
    response = case.call()

    assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
    if response.status_code >= 400:
        assert set(response.json()) >= {"code", "detail"}
