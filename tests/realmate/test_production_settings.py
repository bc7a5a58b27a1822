"""Production settings refuse unsafe configuration: checked in a fresh interpreter, as a deploy would start."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"SECRET_KEY": "a-real-secret-" + "x" * 40, "ALLOWED_HOSTS": "example.com", "DEBUG": "False"}


def start(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ALLOWED_HOSTS", "DEBUG"}}
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.SECURE_CONTENT_TYPE_NOSNIFF, settings.X_FRAME_OPTIONS)",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "realmate.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_good_configuration_starts_with_security_headers_on():
    result = start(**GOOD)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "DENY"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"DEBUG": "True"}, "DEBUG must be off"),
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "insecure-local-only-key"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "change-me-to-a-long-random-string"}, "SECRET_KEY must be set"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must list"),
    ],
    ids=["debug-on", "no-secret-key", "dev-secret-key", "env-example-placeholder", "no-allowed-hosts"],
)
def test_unsafe_configuration_refuses_to_start(override, message):
    result = start(**(GOOD | override))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr
