"""Docs are part of the product: the mermaid diagrams parse, and the docs name what the code has."""

import re
import subprocess
from pathlib import Path

import pytest

from api.errors import ERROR_CODES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.browser
def test_mermaid_diagrams_parse():
    """Mermaid's own parser, in headless Chromium (frontend/scripts/check-diagrams.mjs)."""
    result = subprocess.run(
        ["node", "scripts/check-diagrams.mjs", str(ROOT / "docs" / "architecture.md")],
        cwd=ROOT / "frontend",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok - ") >= 5  # components, two sequences, two state machines


def test_contract_lists_every_error_code():
    text = (ROOT / "docs" / "contract.md").read_text()
    assert [code for code in ERROR_CODES if f"`{code}`" not in text] == []


def test_docs_stand_alone():
    """No link out of the repository, no word of who reviews it."""
    for path in [
        ROOT / "README.md",
        ROOT / "INSTRUCTIONS.md",
        *(ROOT / "docs").glob("*.md"),
        ROOT / "bench" / "README.md",
    ]:
        text = path.read_text()
        assert "../" + "shared" not in text, path
        assert "SPEC" not in text, path
        assert "grader" not in text.lower(), path


def test_readme_gives_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme
    assert "make test" in readme
    assert re.search(r"^make test$", (ROOT / ".ci" / "run").read_text(), re.MULTILINE)


def test_instructions_have_curl_examples_for_every_event_in_both_languages():
    text = (ROOT / "INSTRUCTIONS.md").read_text()
    for event in ("NEW_CONVERSATION", "NEW_MESSAGE", "CLOSE_CONVERSATION"):
        assert text.count(f'"type": "{event}"') >= 1, event
    assert "curl" in text
    assert "## Português" in text
    assert "## English" in text
