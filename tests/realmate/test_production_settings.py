"""Production settings refuse unsafe configuration: checked in a fresh interpreter, as a deploy would start."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "example.com", "DEBUG": "False"}
CLEARED = {"SECRET_KEY", "SECRET_KEY_FILE", "ALLOWED_HOSTS", "DEBUG", "API_AUTH_REQUIRED", "WEBHOOK_SECRET"}


def start(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in CLEARED}
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
        ({"SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(50)}, "it is a placeholder"),
        ({"SECRET_KEY": "abc"}, "at least 50 characters"),
        ({"SECRET_KEY": "ab" * 40}, "at least 50 characters with 5 distinct"),
        ({"SECRET_KEY": "", "SECRET_KEY_FILE": "/nonexistent/secret_key"}, "SECRET_KEY must be set"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must list"),
        ({"ALLOWED_HOSTS": "*"}, "not '*'"),
    ],
    ids=[
        "debug-on",
        "no-secret-key",
        "dev-secret-key",
        "env-example-placeholder",
        "startproject-placeholder",
        "short",
        "few-distinct-characters",
        "key-file-missing",
        "no-allowed-hosts",
        "wildcard-allowed-hosts",
    ],
)
def test_unsafe_configuration_refuses_to_start(override, message):
    result = start(**(GOOD | override))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_unset_secret_key_is_read_from_the_key_file(tmp_path):
    key = secrets.token_urlsafe(50)
    (tmp_path / "secret_key").write_text(key + "\n")

    result = start(**(GOOD | {"SECRET_KEY": "", "SECRET_KEY_FILE": str(tmp_path / "secret_key")}))

    assert result.returncode == 0, result.stderr


def test_a_set_secret_key_wins_over_the_key_file_and_is_still_checked(tmp_path):
    (tmp_path / "secret_key").write_text(secrets.token_urlsafe(50))

    result = start(**(GOOD | {"SECRET_KEY": "abc", "SECRET_KEY_FILE": str(tmp_path / "secret_key")}))

    assert result.returncode != 0
    assert "at least 50 characters" in result.stderr


def test_auth_mode_without_a_webhook_secret_refuses_to_start():
    result = start(**(GOOD | {"API_AUTH_REQUIRED": "True", "WEBHOOK_SECRET": ""}))

    assert result.returncode != 0
    assert "WEBHOOK_SECRET is empty" in result.stderr


def test_auth_mode_with_a_webhook_secret_starts():
    result = start(**(GOOD | {"API_AUTH_REQUIRED": "True", "WEBHOOK_SECRET": secrets.token_hex(16)}))

    assert result.returncode == 0, result.stderr
