"""Deliveries claimed in batches: a row's next attempt and its batch's claim replace the per-job lease, and the
receiver gets a circuit breaker.

The lease columns leave the model only: they stay in the table, nullable, for one release, so delivery processes
of the previous code still running during an upgrade keep working (docs/operations.md, "Upgrading"); the next
release drops them. next_attempt_at defaults to the database clock, so a reply the previous code writes meanwhile
is due at once for this one."""

import chat.db
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("delivery", "0001_reply_delivery")]

    operations = [
        migrations.RemoveIndex(model_name="replydelivery", name="delivery_pending_lease_idx"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="replydelivery", name="lease_token"),
                migrations.RemoveField(model_name="replydelivery", name="lease_until"),
            ],
        ),
        migrations.AddField(
            model_name="replydelivery",
            name="claim_token",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="replydelivery",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True, db_default=chat.db.ClockTimestamp()),
        ),
        migrations.AddIndex(
            model_name="replydelivery",
            index=models.Index(
                condition=models.Q(("state", "pending")), fields=["next_attempt_at"], name="delivery_pending_due_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="replydelivery",
            index=models.Index(
                condition=models.Q(("state", "pending")), fields=["created_at"], name="delivery_pending_age_idx"
            ),
        ),
        migrations.CreateModel(
            name="ReceiverCircuit",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False)),
                ("failures", models.PositiveIntegerField(default=0)),
                ("opened_at", models.DateTimeField(blank=True, null=True)),
                ("probe_at", models.DateTimeField(blank=True, null=True)),
                ("last_error", models.CharField(blank=True, default="", max_length=500)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("id", 1)), name="receiver_circuit_single_row")
                ]
            },
        ),
        # Last: the table's indexes cannot change after an UPDATE in the same transaction. The new column's
        # default fills existing rows too; settled ones have no next attempt.
        migrations.RunSQL(
            "UPDATE delivery_replydelivery SET next_attempt_at = NULL WHERE state <> 'pending'",
            migrations.RunSQL.noop,
        ),
    ]
