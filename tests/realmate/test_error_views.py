"""Errors Django answers itself come in the API's JSON shape; the admin keeps its HTML; the UI only serves reads."""

import json
from http import HTTPStatus

import pytest
from django.test import Client

from realmate import ui

pytestmark = pytest.mark.django_db


def assert_json_error(response, status: HTTPStatus, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["code"] == code
    assert body["detail"]


@pytest.mark.parametrize("path", ["/nope", "/conversations/x/y/z", "/api/nothing/"])
def test_unknown_path_is_a_json_404(api, path):
    assert_json_error(api.get(path), HTTPStatus.NOT_FOUND, "not_found")


def test_unknown_admin_path_keeps_the_admin_page(admin_client):
    response = admin_client.get("/admin/nope/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert "text/html" in response["Content-Type"]


def test_a_host_not_allowed_is_a_json_400(api):
    assert_json_error(api.get("/conversations/", HTTP_HOST="evil.example"), HTTPStatus.BAD_REQUEST, "bad_request")


@pytest.mark.urls("tests.realmate.crash_urls")
def test_a_crash_is_a_json_500_without_details():
    response = Client(raise_request_exception=False).get("/crash/")

    assert_json_error(response, HTTPStatus.INTERNAL_SERVER_ERROR, "error")
    assert "boom" not in response.content.decode()


def test_csrf_failure_outside_the_admin_is_json():
    from realmate.error_views import csrf_failure

    response = csrf_failure(Client().get("/").wsgi_request, reason="CSRF token missing.")

    assert_json_error(response, HTTPStatus.FORBIDDEN, "permission_denied")


@pytest.mark.parametrize("method", ["post", "put", "delete", "options", "trace"])
def test_the_ui_page_answers_only_get_and_head(api, method):
    assert api.generic(method.upper(), "/").status_code == HTTPStatus.METHOD_NOT_ALLOWED


@pytest.fixture
def built_ui(tmp_path, monkeypatch):
    index = tmp_path / "index.html"
    index.write_text("<!doctype html><title>UI</title>")
    monkeypatch.setattr(ui, "UI_INDEX", index)
    ui._index_html.cache_clear()
    yield
    ui._index_html.cache_clear()


@pytest.mark.usefixtures("built_ui")
def test_the_ui_page_carries_a_content_security_policy(api):
    response = api.get("/")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Security-Policy"] == ui.CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in ui.CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("method", ["options", "post", "trace"])
def test_the_api_docs_page_answers_other_methods_with_405_not_a_crash(api, method):
    assert api.generic(method.upper(), "/api/docs/").status_code == HTTPStatus.METHOD_NOT_ALLOWED
