import uuid
from datetime import timedelta
from http import HTTPStatus

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from chat.models import Conversation, Message, message_order_key
from scheduler.selectors import SWEEP_TASK_NAME
from tests.factories import EXAMPLE_TIME, ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("suffix", ["/", ""])
def test_detail_returns_the_conversation_with_and_without_trailing_slash(api, suffix):
    message = MessageFactory(content="Oi")

    response = api.get(f"/conversations/{message.conversation_id}{suffix}")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["id"] == str(message.conversation_id)
    assert body["status"] == "OPEN"
    assert {"created_at", "updated_at"} <= body.keys()
    assert (body["bot_paused_until"], body["reply_rules"]) == (None, None)
    assert body["messages"] == [
        {
            "id": str(message.id),
            "type": "INBOUND",
            "author": "user",
            "content": "Oi",
            "timestamp": "2025-06-04T14:20:00Z",
            "received_at": body["messages"][0]["received_at"],
            "pending": True,
            "reply_id": None,
            "handled_by": None,
            "send_reason": None,
            "due_at": None,
            "delivery": None,
        }
    ]


@pytest.mark.parametrize("conversation_id", ["3f0c2a4e-9d7b-4c1e-8a55-0b6f1d2e3c4a", "not-a-uuid", "123", "%20"])
def test_detail_of_unknown_or_malformed_id_is_404(api, conversation_id):
    response = api.get(f"/conversations/{conversation_id}/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["code"] == "not_found"


def test_messages_are_ordered_by_timestamp_then_arrival(api):
    conversation = ConversationFactory()
    later = MessageFactory(conversation=conversation, timestamp=EXAMPLE_TIME + timedelta(seconds=10))
    first_arrival = MessageFactory(conversation=conversation, timestamp=EXAMPLE_TIME)
    second_arrival = MessageFactory(conversation=conversation, timestamp=EXAMPLE_TIME)
    earliest = MessageFactory(conversation=conversation, timestamp=EXAMPLE_TIME - timedelta(seconds=10))

    response = api.get(f"/conversations/{conversation.id}/")

    ids = [m["id"] for m in response.json()["messages"]]
    assert ids == [str(m.id) for m in (earliest, first_arrival, second_arrival, later)]


@pytest.mark.parametrize("message_count", [1, 50])
def test_detail_takes_two_queries_whatever_the_message_count(api, django_assert_num_queries, message_count):
    conversation = ConversationFactory()
    MessageFactory.create_batch(message_count, conversation=conversation)

    with django_assert_num_queries(2):
        response = api.get(f"/conversations/{conversation.id}/")

    assert len(response.json()["messages"]) == message_count


def test_a_long_conversation_shows_its_newest_messages_and_links_to_the_older_ones(api, settings):
    settings.MESSAGES_PER_PAGE = 3
    conversation = ConversationFactory()
    messages = [
        MessageFactory(conversation=conversation, timestamp=EXAMPLE_TIME + timedelta(seconds=n % 3)) for n in range(7)
    ]
    expected = [str(m.id) for m in sorted(messages, key=message_order_key)]

    pages, url = [], f"/conversations/{conversation.id}/"
    while url:
        body = api.get(url).json()
        pages.append([m["id"] for m in body["messages"]])
        url = body["older"]

    assert [len(page) for page in pages] == [3, 3, 1]
    assert [message_id for page in reversed(pages) for message_id in page] == expected


def test_an_ordinary_conversation_fits_whole_with_no_older_link(api):
    conversation = ConversationFactory()
    MessageFactory.create_batch(5, conversation=conversation)

    body = api.get(f"/conversations/{conversation.id}/").json()

    assert len(body["messages"]) == 5
    assert body["older"] is None


@pytest.mark.parametrize("cursor", ["nope", "MjAyNQ", "eHx5fHo"], ids=["not-base64", "one-part", "not-dates"])
def test_a_cursor_the_api_did_not_give_out_is_400(api, cursor):
    conversation = ConversationFactory()

    response = api.get(f"/conversations/{conversation.id}/?before={cursor}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "invalid_cursor"


def test_list_is_paginated_newest_activity_first_with_what_waits(api):
    conversations = ConversationFactory.create_batch(3)
    Conversation.objects.filter(id=conversations[0].id).update(updated_at=EXAMPLE_TIME + timedelta(days=900))
    MessageFactory(conversation=conversations[0])
    MessageFactory(conversation=conversations[0], pending=False)

    response = api.get("/conversations/?page_size=2")

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert set(body) == {"next", "previous", "results"}
    assert len(body["results"]) == 2
    assert body["next"] is not None
    assert body["previous"] is None
    assert body["results"][0]["id"] == str(conversations[0].id)
    assert body["results"][0]["pending_count"] == 1
    assert body["results"][1]["pending_count"] == 0


def test_paging_lists_each_conversation_once_even_when_a_batch_stamped_them_alike(api):
    """A reply batch gives every conversation it answered the same updated_at: the order breaks the tie by id."""
    alike = ConversationFactory.create_batch(5)
    Conversation.objects.filter(id__in=[c.id for c in alike]).update(updated_at=EXAMPLE_TIME)
    others = ConversationFactory.create_batch(4)
    expected = [str(c.id) for c in Conversation.objects.order_by("-updated_at", "-id")]

    pages, previous, url = [], [], "/conversations/?page_size=2"
    while url:
        body = api.get(url).json()
        pages.append([c["id"] for c in body["results"]])
        url = body["next"]
        previous.append(body["previous"])
    back = api.get(previous[1]).json()

    assert [c for page in pages for c in page] == expected
    assert len(expected) == len(alike) + len(others)
    assert [c["id"] for c in back["results"]] == pages[0]


def test_list_takes_one_query_whatever_is_stored(api, django_assert_num_queries):
    for conversation in ConversationFactory.create_batch(5):
        MessageFactory.create_batch(3, conversation=conversation)

    with django_assert_num_queries(1):
        response = api.get("/conversations")

    assert len(response.json()["results"]) == 5


@pytest.mark.parametrize("status", ["OPEN", "CLOSED"])
def test_list_filters_by_status(api, status):
    ConversationFactory()
    ConversationFactory(status=Conversation.Status.CLOSED, closed_at=EXAMPLE_TIME)

    response = api.get(f"/conversations/?status={status}")

    assert [c["status"] for c in response.json()["results"]] == [status]


def test_list_with_unknown_status_is_400(api):
    response = api.get("/conversations/?status=ARCHIVED")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["code"] == "invalid_payload"
    assert "status" in response.json()["errors"]


@pytest.mark.parametrize("cursor", ["x", "cD1nYXJiYWdl", "cD0yMDI1LTEzLTQwVDAwOjAwOjAwWg%3D%3D"])
def test_a_list_cursor_the_api_did_not_give_out_is_404(api, cursor):
    """Not base64; a position that is not a time (p=garbage); a time that is no date (p=2025-13-40T00:00:00Z)."""
    response = api.get(f"/conversations/?cursor={cursor}")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["code"] == "not_found"


def test_outbound_reply_is_linked_from_the_messages_it_answers(api):
    inbound = MessageFactory(pending=False)
    reply = MessageFactory(
        conversation=inbound.conversation, type=Message.Type.OUTBOUND, pending=False, content="Mensagens recebidas:\n"
    )
    Message.objects.filter(id=inbound.id).update(reply=reply)

    messages = api.get(f"/conversations/{inbound.conversation_id}/").json()["messages"]

    assert messages[0]["reply_id"] == str(reply.id)
    assert messages[1]["type"] == "OUTBOUND"


@pytest.mark.django_db(transaction=True)
def test_webhook_answers_503_when_the_database_is_unreachable(webhook):
    """A real unreachable database (a closed port), not a mock: 503 with a stable code, nothing written."""
    from tests.helpers import new_conversation, unreachable_database

    with unreachable_database():
        response = webhook.post(new_conversation(uuid.uuid4()))

    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.json()["code"] == "database_unavailable"
    assert Conversation.objects.count() == 0


def test_list_searches_by_the_start_of_the_id(api):
    wanted = ConversationFactory(id=uuid.UUID("abcdef12-0000-4000-8000-000000000001"))
    ConversationFactory(id=uuid.UUID("12345678-0000-4000-8000-000000000001"))

    ConversationFactory(id=uuid.UUID("abcdef13-0000-4000-8000-000000000001"))

    for prefix in ("ABCDEF12", "abcdef12-0", "abcdef12-0000-4000-8000-000000000001"):
        response = api.get(f"/conversations/?q={prefix}")
        assert [c["id"] for c in response.json()["results"]] == [str(wanted.id)], prefix
    assert len(api.get("/conversations/?q=abcdef1").json()["results"]) == 2


@pytest.mark.parametrize("query", ["x%27%3B", "g1", "---", "0" * 33])
def test_list_rejects_a_search_that_cannot_be_an_id(api, query):
    response = api.get(f"/conversations/?q={query}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert "q" in response.json()["errors"]


def test_config_reports_the_timing_rules(api, settings):
    response = api.get("/api/config/")

    assert response.json() == {
        "group_window_seconds": settings.GROUP_WINDOW_SECONDS,
        "orphan_ttl_seconds": settings.ORPHAN_TTL_SECONDS,
        "sweep_interval_seconds": settings.SWEEP_INTERVAL_SECONDS,
        "max_group_wait_seconds": settings.MAX_GROUP_WAIT_SECONDS,
        "max_group_messages": settings.MAX_GROUP_MESSAGES,
        "bot_pause_seconds": settings.BOT_PAUSE_SECONDS,
    }


def test_config_reports_the_sweep_interval_the_admin_set_in_one_query(api, django_assert_num_queries):
    call_command("setup_periodic_tasks")
    PeriodicTask.objects.filter(name=SWEEP_TASK_NAME).update(
        interval=IntervalSchedule.objects.create(every=30, period=IntervalSchedule.SECONDS)
    )

    with django_assert_num_queries(1):
        response = api.get("/api/config/")

    assert response.status_code == HTTPStatus.OK
    assert response.json()["sweep_interval_seconds"] == 30.0
