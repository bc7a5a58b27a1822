"""GET /metrics: counters move with what happened, gauges come from the database, the read switch guards it."""

import os
import subprocess
import sys
import uuid
from http import HTTPStatus

import pytest
from rest_framework.authtoken.models import Token

from chat.models import Message
from realmate.metrics_api import ProcessFilesCollector
from tests.factories import ConversationFactory, MessageFactory, ParkedMessageFactory
from tests.helpers import (
    age_rows,
    agent_message,
    metric_samples,
    new_conversation,
    new_message,
    pause_bot,
    replies_answer_due,
)

pytestmark = pytest.mark.django_db


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == HTTPStatus.OK, response.content
    assert response["Content-Type"].startswith("text/plain")
    return metric_samples(response.content.decode())


def test_webhook_requests_are_counted_by_event_and_outcome(api, webhook, new_id):
    before = scrape(api)
    conversation_id = new_id()
    webhook.post(new_conversation(conversation_id))
    webhook.post(new_message(new_id(), conversation_id))
    webhook.post(new_conversation(conversation_id))  # conversation_exists
    webhook.post("[]")

    after = scrape(api)

    def delta(event: str, outcome: str) -> float:
        key = ("realmate_webhook_requests_total", (("event", event), ("outcome", outcome)))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("NEW_CONVERSATION", "created") == 1
    assert delta("NEW_MESSAGE", "stored") == 1
    assert delta("NEW_CONVERSATION", "conversation_exists") == 1
    assert delta("unknown", "invalid_payload") == 1
    latency = ("realmate_webhook_request_seconds_count", (("event", "NEW_CONVERSATION"),))
    assert after[latency] - before.get(latency, 0) == 2


def test_a_reply_counts_its_reason_lag_and_size(api, settings, django_capture_on_commit_callbacks):
    first = MessageFactory()
    second = MessageFactory(conversation=first.conversation)
    age_rows(Message, [first.id, second.id], settings.GROUP_WINDOW_SECONDS + 0.5)
    before = scrape(api)

    with django_capture_on_commit_callbacks(execute=True):
        replies_answer_due(first.conversation_id)

    after = scrape(api)
    assert (
        after[("realmate_replies_total", (("send_reason", "quiet"),))]
        - before.get(("realmate_replies_total", (("send_reason", "quiet"),)), 0)
        == 1
    )
    assert after[("realmate_reply_messages_sum", ())] - before[("realmate_reply_messages_sum", ())] == 2
    lag = after[("realmate_reply_lag_seconds_sum", ())] - before[("realmate_reply_lag_seconds_sum", ())]
    assert settings.GROUP_WINDOW_SECONDS + 0.5 <= lag < settings.GROUP_WINDOW_SECONDS + 5


def test_pending_and_parked_gauges_are_read_from_the_database(api):
    MessageFactory.create_batch(3)
    ParkedMessageFactory.create_batch(2)

    samples = scrape(api)

    assert samples[("realmate_messages_pending", ())] == 3
    assert samples[("realmate_messages_parked", ())] == 2
    assert samples[("realmate_reply_deliveries", (("state", "pending"),))] == 0


def test_metrics_are_behind_the_read_switch(api, settings, admin_user):
    settings.API_AUTH_REQUIRED = True
    settings.WEBHOOK_SECRET = "s"
    assert api.get("/metrics").status_code == HTTPStatus.UNAUTHORIZED
    token = Token.objects.create(user=admin_user)
    assert scrape(api, Authorization=f"Token {token.key}")


def test_a_scraper_that_accepts_only_text_plain_gets_the_metrics(api):
    assert scrape(api, Accept="text/plain;version=0.0.4")


def test_the_scrape_adds_up_the_processes_of_every_host(tmp_path):
    """Each host writes its processes' files in a directory of its own (bin/entrypoint.sh), as prometheus_client's
    multiprocess mode does for one; the scrape adds up all of them."""
    count = "from prometheus_client import Counter; Counter('realmate_test_events', 'x').inc({})"
    for host, amount in [("web-1", 2), ("worker-1", 3)]:
        (tmp_path / host).mkdir()
        subprocess.run(
            [sys.executable, "-c", count.format(amount)],
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / host)},
            check=True,
        )

    samples = {
        sample.name: sample.value for family in ProcessFilesCollector(tmp_path).collect() for sample in family.samples
    }

    assert samples["realmate_test_events_total"] == 5


def test_takeovers_handoffs_and_conversations_paused_now(api, webhook, settings, django_capture_on_commit_callbacks):
    settings.HANDOFF_KEYWORDS = ["atendente"]
    conversations = ConversationFactory.create_batch(3)
    before = scrape(api)

    with django_capture_on_commit_callbacks(execute=True):
        webhook.post(agent_message(uuid.uuid4(), conversations[0].id))
        webhook.post(agent_message(uuid.uuid4(), conversations[0].id))  # already paused: not a takeover
        webhook.post(pause_bot(conversations[1].id, seconds=60))
        webhook.post(new_message(uuid.uuid4(), conversations[2].id, "um ATENDENTE"))
    after = scrape(api)

    def delta(name: str, labels: tuple) -> float:
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    takeovers = "realmate_takeovers_total"
    assert delta(takeovers, (("source", "agent_message"),)) == 1
    assert delta(takeovers, (("source", "pause_bot"),)) == 1
    assert delta(takeovers, (("source", "handoff"),)) == 1
    assert delta("realmate_handoffs_total", (("keyword", "atendente"),)) == 1
    assert after[("realmate_conversations_paused", ())] == 3
    assert delta("realmate_webhook_requests_total", (("event", "PAUSE_BOT"), ("outcome", "paused"))) == 1
