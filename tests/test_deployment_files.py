"""The structure of the compose file, read as data; tests/compose runs it (the image, the proxy, every role) for
real where a Docker engine exists. The processes compose starts are the same `bin/entrypoint.sh <role>` that the
end-to-end tests and the local run start."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("web", "worker", "delivery", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_example_variables() -> set[str]:
    return set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", (ROOT / "env.example").read_text(), re.MULTILINE))


def test_compose_has_the_seven_services(compose):
    assert set(compose["services"]) == {"proxy", "web", "worker", "delivery", "beat", "db", "redis"}


@pytest.mark.parametrize("service", ["proxy", "db", "redis", *ROLES])
def test_every_service_has_a_health_check(compose, service):
    healthcheck = compose["services"][service]["healthcheck"]
    assert healthcheck["test"]
    assert healthcheck["interval"]


@pytest.mark.parametrize("role", ROLES)
def test_app_services_run_their_role_and_its_healthcheck(compose, role):
    service = compose["services"][role]
    assert service["build"] == {"context": ".", "target": "app"}
    assert service["command"] == [role]
    assert "ports" not in service  # only the proxy is published
    assert service["healthcheck"]["test"] == ["CMD", "bin/healthcheck", role]
    assert service["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert service["restart"] == "unless-stopped"
    assert "appdata:/var/lib/realmate" in service["volumes"]


def test_only_the_proxy_publishes_a_port_and_it_is_configurable(compose):
    published = {name for name, service in compose["services"].items() if "ports" in service}
    assert published == {"proxy"}
    assert compose["services"]["proxy"]["ports"] == ["${HTTP_PORT:-8000}:8000"]
    assert compose["services"]["proxy"]["build"] == {"context": ".", "target": "proxy"}


def test_data_and_the_generated_key_live_in_named_volumes(compose):
    assert set(compose["volumes"]) == {"pgdata", "appdata"}
    assert "pgdata:/var/lib/postgresql/data" in compose["services"]["db"]["volumes"]


@pytest.mark.parametrize("excluded", [".git", ".venv", ".env", "tests", "bench", "docs", "frontend/node_modules"])
def test_dockerignore_keeps_tests_tools_and_local_files_out_of_the_image(excluded):
    assert excluded in (ROOT / ".dockerignore").read_text().splitlines()


def test_shell_scripts_keep_lf_endings():
    attributes = (ROOT / ".gitattributes").read_text()
    assert "*.sh text eol=lf" in attributes
    assert "bin/* text eol=lf" in attributes


def test_the_healthcheck_loads_neither_django_nor_celery(tmp_path):
    """It runs every few seconds in each container, so it reads a file or makes one request and loads nothing more."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(ROOT / "bin" / "healthcheck"), "worker"],
        env={"PATH": os.environ["PATH"], "HEALTH_FILE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert "has not written its liveness file yet" in result.stdout + result.stderr  # it ran to its verdict
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
    assert imported & {"django", "celery", "kombu"} == set()


def test_procfile_runs_the_same_entrypoint_roles_as_compose():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert procfile == {role: f"bin/entrypoint.sh {role}" for role in ROLES}


# Variables env.example explains that the OpenTelemetry SDK reads itself (realmate.tracing starts it).
SDK_VARIABLES = {
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_BSP_SCHEDULE_DELAY",
}


def variables_read() -> set[str]:
    """The variables the settings, the entrypoint, the healthcheck and the compose file read."""
    read = set()
    settings = [path for path in (ROOT / "realmate" / "settings").glob("*.py") if path.name != "test.py"]
    for path in [
        *settings,
        ROOT / "bin" / "entrypoint.sh",
        ROOT / "bin" / "healthcheck",
        ROOT / "core" / "liveness.py",
        ROOT / "realmate" / "tracing.py",
        ROOT / "docker-compose.yml",
        ROOT / "manage.py",
    ]:
        text = path.read_text()
        read |= set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
        read |= set(re.findall(r"""environ\.(?:get|setdefault)\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
        read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", text))
    return read | SDK_VARIABLES


def test_every_variable_read_is_in_env_example():
    assert variables_read() - env_example_variables() == set()


def test_every_variable_in_env_example_is_read():
    assert env_example_variables() - variables_read() == set()


def test_what_the_image_sets_stays_commented_out_in_env_example():
    """Compose passes .env whole, so a line copied from env.example uncommented would override the image's value
    in every container (and BIND would stop web listening where the proxy looks)."""
    image_owned = {"SECRET_KEY_FILE", "STATIC_ROOT", "COLLECTSTATIC_ON_START", "PROMETHEUS_MULTIPROC_DIR", "BIND"}
    active = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / "env.example").read_text(), re.MULTILINE))
    assert active & image_owned == set()
