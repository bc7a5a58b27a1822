"""Production settings: refuse to start with an unsafe configuration."""

from pathlib import Path

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

# Placeholders that must never run in production: env.example's, the local default's, Django's startproject's.
PLACEHOLDER_PREFIXES = ("change-me", "insecure", SECRET_KEY_INSECURE_PREFIX)


def secret_key_problem(key: str) -> str | None:
    """Why `key` is not a real secret (Django's own deploy rule, plus the known placeholders), or None."""
    if key.startswith(PLACEHOLDER_PREFIXES):
        return "it is a placeholder"
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        length, distinct = SECRET_KEY_MIN_LENGTH, SECRET_KEY_MIN_UNIQUE_CHARACTERS
        return f"it must be at least {length} characters with {distinct} distinct"
    return None


# No defaults here: a missing value is a deploy mistake, not something to paper over. SECRET_KEY_FILE is the
# containers' fallback when SECRET_KEY is unset: bin/entrypoint.sh generates that file once, in a volume.
SECRET_KEY = env("SECRET_KEY", default="")
SECRET_KEY_FILE = env("SECRET_KEY_FILE", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
DEBUG = env.bool("DEBUG", default=False)

if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (unset DEBUG or set DEBUG=False).")
if not SECRET_KEY and SECRET_KEY_FILE and Path(SECRET_KEY_FILE).is_file():
    SECRET_KEY = Path(SECRET_KEY_FILE).read_text().strip()
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a real secret in production (or left unset with SECRET_KEY_FILE naming a file "
        "that holds one; the container entrypoint generates it)."
    )
if problem := secret_key_problem(SECRET_KEY):
    raise ImproperlyConfigured(f"SECRET_KEY must be set to a real secret in production: {problem}.")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the host names this service answers to.")
if "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the host names this service answers to, not '*'.")

if API_AUTH_REQUIRED and not WEBHOOK_SECRET:  # noqa: F405 (from base)
    raise ImproperlyConfigured(
        "API_AUTH_REQUIRED is on but WEBHOOK_SECRET is empty: anyone could still send webhooks. Set WEBHOOK_SECRET."
    )

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=False)
# Behind the compose proxy (deploy/nginx.conf), which sets X-Forwarded-Proto itself and is the only way in,
# Django may read it to know a request came over HTTPS. Reached directly, a client could claim anything.
if env.bool("BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
