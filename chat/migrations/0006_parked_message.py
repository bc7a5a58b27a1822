"""PendingMessage becomes ParkedMessage: "pending" means awaiting a reply, a message waiting for its conversation is
parked. The table, its indexes and its constraint are renamed. Processes still running the previous code during an
upgrade write through a view with the old table's name (PostgreSQL updates a one-table view's table itself); the
next release drops it (docs/operations.md, "Upgrading")."""

from django.db import migrations, models

RENAMED_INDEXES = [
    ("pending_parked_conv_idx", "parked_conversation_idx"),
    ("pending_parked_age_idx", "parked_age_idx"),
    ("pending_resolved_idx", "parked_resolved_idx"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_conversation_reply_lease_retired"),
    ]

    operations = [
        migrations.RenameModel("PendingMessage", "ParkedMessage"),
        *[migrations.RenameIndex("parkedmessage", new_name=new, old_name=old) for old, new in RENAMED_INDEXES],
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE chat_parkedmessage RENAME CONSTRAINT pending_state_valid TO parked_state_valid",
                    "ALTER TABLE chat_parkedmessage RENAME CONSTRAINT parked_state_valid TO pending_state_valid",
                ),
                migrations.RunSQL(
                    "ALTER INDEX chat_pendingmessage_pkey RENAME TO chat_parkedmessage_pkey",
                    "ALTER INDEX chat_parkedmessage_pkey RENAME TO chat_pendingmessage_pkey",
                ),
            ],
            state_operations=[
                migrations.RemoveConstraint("parkedmessage", "pending_state_valid"),
                migrations.AddConstraint(
                    "parkedmessage",
                    models.CheckConstraint(
                        condition=models.Q(state__in=["PARKED", "ATTACHED", "EXPIRED"]),
                        name="parked_state_valid",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(
            "CREATE VIEW chat_pendingmessage AS SELECT * FROM chat_parkedmessage",
            "DROP VIEW chat_pendingmessage",
        ),
    ]
