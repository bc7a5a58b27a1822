"""A pending delivery always has a next attempt. Added NOT VALID, then validated in a statement of its own (not
atomic): the validation scans the table without blocking its writes."""

from django.db import migrations, models

CONSTRAINT = "delivery_pending_has_next_attempt"


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("delivery", "0002_delivery_in_batches")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="replydelivery",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("state", "pending"), _negated=True),
                            ("next_attempt_at__isnull", False),
                            _connector="OR",
                        ),
                        name=CONSTRAINT,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"ALTER TABLE delivery_replydelivery ADD CONSTRAINT {CONSTRAINT} "
                    "CHECK (NOT state = 'pending' OR next_attempt_at IS NOT NULL) NOT VALID",
                    f"ALTER TABLE delivery_replydelivery DROP CONSTRAINT {CONSTRAINT}",
                ),
                migrations.RunSQL(
                    f"ALTER TABLE delivery_replydelivery VALIDATE CONSTRAINT {CONSTRAINT}", migrations.RunSQL.noop
                ),
            ],
        ),
    ]
