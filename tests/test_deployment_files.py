"""The structure of the compose file, read as data; tests/compose runs it (the image, the proxy, every role) for
real where a Docker engine exists. The processes compose starts are the same `bin/entrypoint.sh <role>` that the
end-to-end tests and the local run start."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("web", "worker", "delivery", "beat")
# Read by the image or the local run only, never passed by compose (the image sets its own values).
NOT_FOR_COMPOSE = {
    "STATIC_ROOT",
    "COLLECTSTATIC_ON_START",
    "SECRET_KEY_FILE",
    # Set by the image; listed in compose and set nowhere, they would reach the containers unset (then manage.py
    # and celery would load the local settings, and every process would count its metrics alone).
    "DJANGO_SETTINGS_MODULE",
    "PROMETHEUS_MULTIPROC_DIR",
    "HEALTH_FILE_DIR",
    "PORT",
    "BIND",
    "HTTP_PORT",
    "POSTGRES_PASSWORD",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def env_example_variables() -> set[str]:
    return set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", (ROOT / "env.example").read_text(), re.MULTILINE))


def compose_variables(service: dict) -> set[str]:
    return {entry.split("=", 1)[0] for entry in service["environment"]}


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


@pytest.mark.parametrize("role", ROLES)
def test_compose_needs_no_env_file_and_passes_every_setting_from_dotenv(compose, role):
    """No env_file (its optional form needs Compose 2.24): `environment` entries take their values from .env."""
    service = compose["services"][role]
    assert "env_file" not in service
    assert compose_variables(service) == env_example_variables() - NOT_FOR_COMPOSE


def test_only_the_urls_and_allowed_hosts_have_compose_defaults_and_dotenv_overrides_them(compose):
    with_values = [entry for entry in compose["services"]["web"]["environment"] if "=" in entry]
    assert with_values == [
        "DATABASE_URL=${DATABASE_URL:-postgres://postgres:postgres@db:5432/realmate}",
        "CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://redis:6379/0}",
        "ALLOWED_HOSTS=${ALLOWED_HOSTS:-localhost,127.0.0.1}",
        "BEHIND_PROXY=true",
    ]


def test_compose_file_has_no_syntax_newer_than_compose_v2_0(compose):
    text = (ROOT / "docker-compose.yml").read_text()
    assert "required:" not in text  # env_file's {path, required} form: Compose >= 2.24
    assert "start_interval" not in text  # Compose >= 2.20 and Docker Engine >= 25
    assert "name" not in compose  # the top-level project name


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


def test_procfile_runs_the_same_entrypoint_roles_as_compose():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert procfile == {role: f"bin/entrypoint.sh {role}" for role in ROLES}


def test_every_variable_the_settings_read_is_in_env_example():
    read = set()
    settings = [path for path in (ROOT / "realmate" / "settings").glob("*.py") if path.name != "test.py"]
    for path in [
        *settings,
        ROOT / "bin" / "entrypoint.sh",
        ROOT / "bin" / "healthcheck",
        ROOT / "core" / "liveness.py",
    ]:
        text = path.read_text()
        read |= set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
        read |= set(re.findall(r"""environ\.get\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
        read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", text))
    assert read - env_example_variables() == set()
