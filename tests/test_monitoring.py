"""deploy/monitoring/: the alert rules and the example Prometheus configuration pass Prometheus' own checker, and
every metric the dashboard and the rules name is one /metrics serves."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from scheduler.models import SweepHeartbeat

MONITORING = Path(__file__).resolve().parent.parent / "deploy" / "monitoring"
# What a metric family adds to its name in the exposition: counters' _total, histograms' series.
SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="needs promtool (apt-get install prometheus)"
)


@needs_promtool
@pytest.mark.parametrize(
    "command", [["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]], ids=["rules", "config"]
)
def test_prometheus_checks_the_files(command):
    checked = subprocess.run(["promtool", *command], cwd=MONITORING, capture_output=True, text=True)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def named_metrics() -> dict[str, set[str]]:
    """Every realmate_ series each file's expressions name."""
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    return {
        "grafana-dashboard.json": set(re.findall(r"realmate_[a-z_]+", " ".join(expressions))),
        "alerts.yml": set(re.findall(r"realmate_[a-z_]+", (MONITORING / "alerts.yml").read_text())),
    }


@pytest.mark.django_db
def test_every_metric_the_dashboard_and_the_rules_name_is_served(api):
    SweepHeartbeat.objects.create(last_sweep_at=timezone.now())  # its gauge is served once a sweep has run

    families = text_string_to_metric_families(api.get("/metrics").content.decode())
    served = {family.name + suffix for family in families for suffix in SUFFIXES.get(family.type, [""])}

    named = named_metrics()
    assert named["grafana-dashboard.json"]
    assert named["alerts.yml"]
    for file, metrics in named.items():
        assert metrics - served == set(), file


def test_every_alert_links_to_its_section_of_operations():
    operations = (MONITORING.parent.parent / "docs" / "operations.md").read_text()
    alerts = re.findall(r"alert: (\w+)", (MONITORING / "alerts.yml").read_text())

    assert len(alerts) >= 5
    for alert in alerts:
        assert f'runbook_url: "docs/operations.md#{alert.lower()}"' in (MONITORING / "alerts.yml").read_text()
        assert f"### {alert}" in operations, alert
