"""The web UI in headless Chromium against the real stack (frontend/e2e/ui.e2e.mjs drives the browser)."""

import os
import re
import subprocess

import pytest

from tests.e2e.conftest import running_stack
from tests.e2e.stack import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

WINDOW_SECONDS = "3"


@pytest.fixture(scope="module")
def stack(receiver):
    if not (ROOT / "frontend" / "dist" / "index.html").exists():
        pytest.fail("frontend/dist is missing: scripts/build_frontend.sh runs before the tests (make test)")
    # Reply delivery on: the timeline shows the attempts.
    yield from running_stack(
        "ui",
        env={
            "GROUP_WINDOW_SECONDS": WINDOW_SECONDS,
            "ORPHAN_TTL_SECONDS": "6",
            "SWEEP_INTERVAL_SECONDS": "0.5",
            "REPLY_WEBHOOK_URL": receiver.url,
            "REPLY_WEBHOOK_SECRET": "ui-reply-secret",
        },
        deliverers=1,
    )


def test_ui_shows_a_burst_answered_once_and_the_conversation_closed(stack, tmp_path):
    result = subprocess.run(
        ["node", "e2e/ui.e2e.mjs"],
        cwd=ROOT / "frontend",
        env={
            **os.environ,
            "BASE_URL": stack.base_url,
            "WINDOW_SECONDS": WINDOW_SECONDS,
            "SCREENSHOT": str(tmp_path / "conversation.png"),
            "TIMELINE_SCREENSHOT": str(tmp_path / "timeline.png"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "conversation.png").stat().st_size > 10_000
    assert (tmp_path / "timeline.png").stat().st_size > 10_000


def test_ui_index_and_assets_are_served_by_django(stack):
    index = stack.http.get(f"{stack.base_url}/", timeout=10)
    assert index.status_code == 200
    assert '<div id="app">' in index.text
    asset = index.text.split('src="', 1)[1].split('"', 1)[0]
    assert asset.startswith("/static/assets/")
    script = stack.http.get(f"{stack.base_url}{asset}", timeout=10)
    assert script.status_code == 200
    assert "javascript" in script.headers["Content-Type"]


def test_admin_and_api_docs_are_served_with_their_static_files(stack):
    admin = stack.http.get(f"{stack.base_url}/admin/login/", timeout=10)
    assert admin.status_code == 200
    css = re.search(r'href="(/static/admin/css/[^"]+\.css)"', admin.text).group(1)
    assert stack.http.get(f"{stack.base_url}{css}", timeout=10).status_code == 200

    docs = stack.http.get(f"{stack.base_url}/api/docs/", timeout=10)
    assert docs.status_code == 200
    bundle = re.search(r'src="(/static/drf_spectacular_sidecar/[^"]+\.js)"', docs.text).group(1)
    assert stack.http.get(f"{stack.base_url}{bundle}", timeout=10).status_code == 200
