import re
from http import HTTPStatus

import pytest
import yaml
from django.core.management import call_command

from api.apis import WEBHOOK_EVENTS
from api.errors import ERROR_CODES
from api.serializers import ConsoleEventSerializer


def test_schema_generation_is_valid_and_warning_free(tmp_path):
    """drf-spectacular's own validation against the OpenAPI 3 JSON schema; warnings count as failures."""
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    response = Client().get("/api/schema/")
    assert response.status_code == HTTPStatus.OK
    return yaml.safe_load(response.content)


def test_schema_is_openapi_3_with_every_endpoint(schema):
    assert schema["openapi"].startswith("3.")
    assert {"/webhook/", "/conversations/", "/conversations/{conversation_id}/", "/healthz/"} <= schema["paths"].keys()


def test_the_console_offers_exactly_the_webhooks_events():
    assert ConsoleEventSerializer().fields["type"].choices.keys() == WEBHOOK_EVENTS.keys()


def test_webhook_documents_every_event_with_examples(schema):
    events = set(WEBHOOK_EVENTS)
    body = schema["paths"]["/webhook/"]["post"]["requestBody"]["content"]["application/json"]
    assert {example["value"]["type"] for example in body["examples"].values()} == events
    event = schema["components"]["schemas"]["WebhookEvent"]
    assert set(event["discriminator"]["mapping"]) == events
    assert set(schema["components"]["schemas"]["NewConversationData"]["properties"]) == {"id", "reply_rules"}
    assert {"201", "202", "200", "400", "401", "413", "503"} <= schema["paths"]["/webhook/"]["post"]["responses"].keys()


def test_every_error_code_is_documented(schema):
    description = schema["paths"]["/webhook/"]["post"]["description"]
    enum = schema["components"]["schemas"]["CodeEnum"]["enum"]
    for code in ERROR_CODES:
        assert f"`{code}`" in description
        assert code in enum


def test_swagger_ui_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")

    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert "swagger-ui" in page
    assert not re.search(r"""(src|href)=["']https?://""", page)
