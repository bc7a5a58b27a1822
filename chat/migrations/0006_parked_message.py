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


def permissions_rename(apps, schema_editor, old="pendingmessage", new="parkedmessage", label="parked message"):
    """Staff granted the old model's permissions keep them under the new name (Django would add new ones and
    leave the old ones on the renamed content type)."""
    Permission = apps.get_model("auth", "Permission")
    for permission in Permission.objects.filter(content_type__app_label="chat", codename__endswith=f"_{old}"):
        action = permission.codename.removesuffix(f"_{old}")
        permission.codename = f"{action}_{new}"
        permission.name = f"Can {action} {label}"
        permission.save(update_fields=["codename", "name"])


def permissions_restore(apps, schema_editor):
    permissions_rename(apps, schema_editor, old="parkedmessage", new="pendingmessage", label="pending message")


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_conversation_reply_lease_retired"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        # Renaming takes the table's strongest lock, which webhooks queue behind: give up rather than stall them
        # behind a long transaction (migrate fails; run it again).
        migrations.RunSQL("SET LOCAL lock_timeout = '5s'", migrations.RunSQL.noop),
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
        migrations.RunPython(permissions_rename, permissions_restore),
    ]
