"""The reply engine's wake-up row; the heartbeat's dispatch count leaves the model (there are no per-group
dispatches any more). The column stays for one release, with a database default so this code's inserts are valid,
for processes still running the previous code during an upgrade (docs/operations.md, "Upgrading")."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("scheduler", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReplyWakeup",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, editable=False, primary_key=True, serialize=False)),
                ("wake_at", models.DateTimeField()),
            ],
            options={
                "constraints": [models.CheckConstraint(condition=models.Q(("id", 1)), name="reply_wakeup_single_row")],
            },
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE scheduler_sweepheartbeat ALTER COLUMN last_dispatched SET DEFAULT 0",
                    reverse_sql="ALTER TABLE scheduler_sweepheartbeat ALTER COLUMN last_dispatched DROP DEFAULT",
                ),
            ],
            state_operations=[migrations.RemoveField(model_name="sweepheartbeat", name="last_dispatched")],
        ),
    ]
