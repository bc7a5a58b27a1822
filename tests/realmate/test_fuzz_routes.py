"""Every route, not only those in the OpenAPI schema (the UI page, the admin, static files, unknown paths), with
any method, headers and body: no answer is a 5xx (hypothesis, in-process, the real test database)."""

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROUTES = [
    "/",
    "/webhook/",
    "/webhook",
    "/conversations/",
    "/conversations/6a41b347-8d80-4ce9-84ba-7af66f369f6a/",
    "/api/config/",
    "/api/schema/",
    "/api/docs/",
    "/admin/",
    "/admin/login/",
    "/static/admin/css/base.css",
    "/healthz",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
path_suffix = st.text(alphabet=st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=20).map(
    lambda text: text.replace(" ", "%20").replace("#", "%23").replace("?", "%3F")
)
query = st.dictionaries(
    st.sampled_from(["status", "q", "page", "page_size", "before", "format", "x"]), st.text(max_size=30)
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "HTTP_ACCEPT": st.sampled_from(["application/json", "text/html", "*/*", "application/xml", "nonsense"]),
        "HTTP_X_HUB_SIGNATURE_256": st.text(max_size=80),
        "HTTP_X_FORWARDED_PROTO": st.sampled_from(["https", "http", "gopher"]),
        "HTTP_TRANSFER_ENCODING": st.sampled_from(["chunked", "gzip"]),
    },
)


@pytest.mark.django_db
@given(
    route=st.sampled_from(ROUTES),
    suffix=path_suffix,
    method=st.sampled_from(METHODS),
    params=query,
    body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
    ),
    extra=headers,
)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_to_any_route_gets_a_server_error(route, suffix, method, params, body, content_type, extra):
    client = Client(raise_request_exception=False)
    path = route + suffix if suffix and not route.endswith(".css") else route

    response = client.generic(method, path, body, content_type=content_type, QUERY_STRING=_query(params), **extra)

    assert response.status_code < 500 or (route == "/healthz" and response.status_code == 503), (
        method,
        path,
        response.status_code,
        response.content[:300],
    )


def _query(params: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode(params)
