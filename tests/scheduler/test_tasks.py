"""The reply job as Celery runs it (eagerly here: the job's body, not the broker, is under test)."""

import pytest

from chat.models import Message
from scheduler.tasks import replies_answer
from tests.factories import MessageFactory
from tests.helpers import Woken, age_rows


@pytest.mark.django_db
def test_a_reply_job_takes_no_conversation_and_answers_what_is_due(settings, monkeypatch):
    monkeypatch.setattr("scheduler.tasks.replies_wake_enqueue", Woken())
    due, fresh = MessageFactory(), MessageFactory()
    age_rows(Message, [due.id], settings.GROUP_WINDOW_SECONDS + 0.1)

    assert replies_answer.apply().get() == 1

    assert list(Message.objects.filter(pending=True).values_list("id", flat=True)) == [fresh.id]
