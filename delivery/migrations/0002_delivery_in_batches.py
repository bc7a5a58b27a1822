"""Deliveries claimed in batches: the per-job lease becomes the batch's claim and the row's next attempt, and the
receiver gets a circuit breaker. Stop the delivery role before migrating: the previous release's jobs read the
renamed columns (docs/operations.md, "Upgrading")."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("delivery", "0001_reply_delivery")]

    operations = [
        migrations.RemoveIndex(model_name="replydelivery", name="delivery_pending_lease_idx"),
        migrations.RenameField(model_name="replydelivery", old_name="lease_token", new_name="claim_token"),
        migrations.RenameField(model_name="replydelivery", old_name="lease_until", new_name="next_attempt_at"),
        # A pending row of the previous release whose job is gone is due at once.
        migrations.RunSQL(
            "UPDATE delivery_replydelivery SET claim_token = NULL, next_attempt_at = clock_timestamp() "
            "WHERE state = 'pending'",
            migrations.RunSQL.noop,
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
                "constraints": [models.CheckConstraint(condition=models.Q(("id", 1)), name="receiver_circuit_single_row")]
            },
        ),
    ]
