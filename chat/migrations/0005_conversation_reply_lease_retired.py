"""The reply engine no longer leases conversations (it claims batches with SKIP LOCKED): the two lease columns
leave the model. They stay in the table for one release, so processes still running the previous code during an
upgrade keep working (docs/operations.md, "Upgrading"); the next release drops them."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0004_conversation_reply_dispatches"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # reply_lease_until is nullable and reply_dispatches has a database default: rows inserted by this
            # code, which names neither, are valid for the old code too.
            state_operations=[
                migrations.RemoveField(model_name="conversation", name="reply_lease_until"),
                migrations.RemoveField(model_name="conversation", name="reply_dispatches"),
            ],
        ),
    ]
