"""The web UI (frontend/, Vue 3 + Vite) is served by Django at / on the same origin as the API."""

from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_safe

UI_INDEX = Path(settings.BASE_DIR) / "frontend" / "dist" / "index.html"


@lru_cache(maxsize=1)
def _index_html() -> str | None:
    return UI_INDEX.read_text() if UI_INDEX.exists() else None


# The UI's page loads its own script and style only, and calls the API on the same origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
)


@require_safe
@ensure_csrf_cookie  # the console's signing request (a staff session's POST) sends it back
def ui_index(request: HttpRequest) -> HttpResponse:
    html = _index_html()
    if html is None:
        return HttpResponse(
            "<!doctype html><title>UI not built</title><p>The web UI is not built: run "
            "<code>scripts/build_frontend.sh</code> (make run does it).</p>",
            status=503,
        )
    response = HttpResponse(html)
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
