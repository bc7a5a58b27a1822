"""Deliveries claimed in batches: a row's next attempt and its batch's claim replace the per-job lease, and the
receiver gets a circuit breaker.

The lease columns leave the model only: they stay in the table, nullable, for one release, so delivery processes
of the previous code still running during an upgrade keep working (docs/operations.md, "Upgrading"); the next
release drops them. next_attempt_at defaults to the database clock, so a reply the previous code writes meanwhile
is due at once for this one.

Not atomic, so no lock outlives its own statement while the previous release keeps writing: the column is added
without a default and the default set after (a volatile default on ADD COLUMN would rewrite the whole table),
and the indexes are changed CONCURRENTLY."""

import core.clock
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("delivery", "0001_reply_delivery")]

    operations = [
        RemoveIndexConcurrently(model_name="replydelivery", name="delivery_pending_lease_idx"),
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
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="replydelivery",
                    name="next_attempt_at",
                    field=models.DateTimeField(blank=True, null=True, db_default=core.clock.ClockTimestamp()),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE delivery_replydelivery ADD COLUMN next_attempt_at timestamp with time zone NULL",
                    "ALTER TABLE delivery_replydelivery DROP COLUMN next_attempt_at",
                ),
                migrations.RunSQL(
                    "ALTER TABLE delivery_replydelivery ALTER COLUMN next_attempt_at SET DEFAULT clock_timestamp()",
                    migrations.RunSQL.noop,
                ),
            ],
        ),
        AddIndexConcurrently(
            model_name="replydelivery",
            index=models.Index(
                condition=models.Q(("state", "pending")), fields=["next_attempt_at"], name="delivery_pending_due_idx"
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
        # The row exists from the start, so every batch's record of the circuit locks it.
        migrations.RunSQL(
            "INSERT INTO delivery_receivercircuit (id, failures, last_error) VALUES (1, 0, '') ON CONFLICT DO NOTHING",
            migrations.RunSQL.noop,
        ),
        # The pending rows of the previous release are due when their lease ends (at once, when it has): a job of
        # the previous release may still be POSTing one until then.
        migrations.RunSQL(
            "UPDATE delivery_replydelivery SET next_attempt_at = greatest(lease_until, clock_timestamp()) "
            "WHERE state = 'pending'",
            migrations.RunSQL.noop,
        ),
    ]
