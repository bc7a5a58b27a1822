"""An upgrade runs the migrations while processes of the previous release still run (docs/operations.md,
"Upgrading"): what they write under the old names must land where the new code reads."""

import uuid

import pytest
from django.db import connection

from chat.models import ParkedMessage

pytestmark = pytest.mark.django_db


def test_the_previous_release_parks_messages_through_the_old_table_name():
    message_id, conversation_id = uuid.uuid4(), uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO chat_pendingmessage (id, conversation_id, content, timestamp, state)"
            " VALUES (%s, %s, 'oi', clock_timestamp(), 'PARKED')",
            [message_id, conversation_id],
        )
        # The previous release's sweep locks what it attaches, then marks it; its purge deletes.
        cursor.execute(
            "SELECT id FROM chat_pendingmessage WHERE state = 'PARKED' AND conversation_id = %s FOR UPDATE SKIP LOCKED",
            [conversation_id],
        )
        assert cursor.fetchall() == [(message_id,)]
        cursor.execute("UPDATE chat_pendingmessage SET state = 'ATTACHED' WHERE id = %s", [message_id])
        parked = ParkedMessage.objects.get(id=message_id)
        assert (parked.conversation_id, parked.state) == (conversation_id, ParkedMessage.State.ATTACHED)
        cursor.execute("DELETE FROM chat_pendingmessage WHERE id = %s", [message_id])

    assert not ParkedMessage.objects.filter(id=message_id).exists()
