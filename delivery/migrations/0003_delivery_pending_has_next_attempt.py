"""A pending delivery always has a next attempt. In a migration of its own: 0002 ends with an UPDATE of the table,
after which PostgreSQL refuses to alter it in the same transaction."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("delivery", "0002_delivery_in_batches")]

    operations = [
        migrations.AddConstraint(
            model_name="replydelivery",
            constraint=models.CheckConstraint(
                condition=models.Q(models.Q(("state", "pending"), _negated=True), ("next_attempt_at__isnull", False), _connector="OR"),
                name="delivery_pending_has_next_attempt",
            ),
        ),
    ]
