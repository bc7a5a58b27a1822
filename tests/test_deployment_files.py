"""docker compose cannot run on the CI machine, so its structure is checked here; the processes it starts are
the same `bin/entrypoint.sh <role>` that the end-to-end tests and the local run (Procfile) start for real."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_compose_has_the_five_services(compose):
    assert set(compose["services"]) == {"web", "worker", "beat", "db", "redis"}


@pytest.mark.parametrize("service", ["db", "redis", "web"])
def test_services_have_health_checks(compose, service):
    healthcheck = compose["services"][service]["healthcheck"]
    assert healthcheck["test"]
    assert healthcheck["interval"]


@pytest.mark.parametrize("role", ROLES)
def test_app_services_run_the_entrypoint_role_after_healthy_db_and_redis(compose, role):
    service = compose["services"][role]
    assert service["build"] == "."
    assert service["command"] == [role]
    assert service["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert service["env_file"] == [{"path": ".env", "required": False}]
    assert set(service["environment"]) == {"DATABASE_URL", "CELERY_BROKER_URL"}
    assert service["restart"] == "unless-stopped"


def test_app_services_share_one_image(compose):
    assert len({compose["services"][role]["image"] for role in ROLES}) == 1


def test_web_publishes_port_8000_and_checks_healthz(compose):
    web = compose["services"]["web"]
    assert web["ports"] == ["8000:8000"]
    assert "/healthz" in " ".join(web["healthcheck"]["test"])


def test_postgres_data_lives_in_a_named_volume(compose):
    assert "pgdata" in compose["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in compose["services"]["db"]["volumes"]


def test_compose_urls_point_at_the_compose_services(compose):
    environment = compose["services"]["web"]["environment"]
    assert "@db:5432/" in environment["DATABASE_URL"]
    assert environment["CELERY_BROKER_URL"].startswith("redis://redis:6379/")


def test_dockerfile_is_slim_non_root_and_uses_the_entrypoint(dockerfile):
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, re.MULTILINE)
    assert re.search(r"^USER app$", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["bin/entrypoint.sh"]' in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    assert "requirements-dev" not in dockerfile.replace(
        "# Runtime dependencies only (requirements.txt, pinned); test tools live in requirements-dev.txt.", ""
    )
    assert "collectstatic" in dockerfile


def test_dockerfile_builds_the_ui_in_a_node_stage_and_ships_only_its_output(dockerfile):
    assert re.search(r"^FROM node:20-slim AS frontend$", dockerfile, re.MULTILINE)
    assert "npm ci" in dockerfile
    assert "COPY --from=frontend /frontend/dist frontend/dist" in dockerfile
    # The UI is copied in before collectstatic, so its files are among the static files of the image.
    assert dockerfile.index("COPY --from=frontend") < dockerfile.index("collectstatic")


def test_procfile_runs_the_same_entrypoint_roles_as_compose():
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert procfile == {role: f"bin/entrypoint.sh {role}" for role in ROLES}


def test_every_variable_the_settings_read_is_in_env_example():
    documented = set(re.findall(r"^#?\s?([A-Z][A-Z0-9_]+)=", (ROOT / "env.example").read_text(), re.MULTILINE))
    read = set()
    settings = [path for path in (ROOT / "realmate" / "settings").glob("*.py") if path.name != "test.py"]
    for path in [*settings, ROOT / "bin" / "entrypoint.sh"]:
        text = path.read_text()
        read |= set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
        read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+):-", text))
    assert read - documented == set()
