from django.db import models


class SweepHeartbeat(models.Model):
    """One row: when the sweeper last completed a sweep, for /healthz and the metrics (a sweep's duration is the
    realmate_sweep_seconds histogram's)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    last_sweep_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="sweep_heartbeat_single_row")]

    def __str__(self) -> str:
        return f"last sweep at {self.last_sweep_at:%Y-%m-%d %H:%M:%S.%f}"
