"""The apps import one way (pyproject.toml, [tool.importlinter]): checked by import-linter, and the check is shown
to catch an import that goes up a layer."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ["realmate", "api", "scheduler", "delivery", "chat", "core"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=project, env={"PYTHONPATH": str(project)}, capture_output=True, text=True
    )


def test_the_apps_import_one_way():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_import_up_a_layer_is_caught(tmp_path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__"))
    clock = tmp_path / "core" / "clock.py"
    clock.write_text(clock.read_text() + "\nfrom chat.models import Message  # noqa\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1
    assert "core.clock -> chat.models" in result.stdout
