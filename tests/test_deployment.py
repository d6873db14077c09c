"""Deployment files: Docker cannot run here, so their shape is checked statically."""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

REPO_DIR = Path(__file__).resolve().parent.parent
SERVICES = {"web", "worker", "beat", "redis", "postgres"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO_DIR / "docker-compose.yml").read_text())


def command_words(service: dict) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else shlex.split(command)


def inner_shell_words(service: dict) -> list[str]:
    """The words of the command, looking inside ``sh -c "..."``."""
    words = command_words(service)
    if words[:2] == ["sh", "-c"]:
        return shlex.split(words[2].replace("&&", " && "))
    return words


def test_compose_declares_the_five_services(compose):
    assert set(compose["services"]) >= SERVICES


def test_web_migrates_then_runs_gunicorn(compose):
    words = inner_shell_words(compose["services"]["web"])

    assert "migrate" in words
    assert "gunicorn" in words
    assert words.index("migrate") < words.index("gunicorn")
    assert "config.wsgi" in words


@pytest.mark.parametrize("role", ["worker", "beat"])
def test_worker_and_beat_run_celery(compose, role):
    words = command_words(compose["services"][role])

    assert words[0] == "celery"
    assert words[words.index("-A") + 1] == "config"
    assert role in words


def test_app_services_use_production_settings_and_the_compose_servers(compose):
    for name in ("web", "worker", "beat"):
        service = compose["services"][name]
        env = service["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production", name
        assert env["DATABASE_URL"].startswith("postgres://"), name
        assert "@postgres:" in env["DATABASE_URL"], name
        assert env["REDIS_URL"].startswith("redis://redis:"), name
        env_files = service["env_file"]
        assert any(
            isinstance(entry, dict) and entry["path"] == ".env" and entry["required"] is False
            for entry in env_files
        ), f"{name}: .env must be optional"
        for dependency in ("postgres", "redis"):
            assert service["depends_on"][dependency]["condition"] == "service_healthy", name


def test_every_service_is_started_again_when_it_exits(compose):
    """The worker exits when Redis drops while it holds unacknowledged tasks (item 17 of
    issue 12); Docker's restart policy is what brings it back, as honcho's respawn.sh does for
    make run."""
    for name in SERVICES:
        assert compose["services"][name].get("restart") in {"always", "unless-stopped"}, name


def test_make_run_keeps_worker_and_beat_up_through_respawn():
    entries = {}
    for line in (REPO_DIR / "Procfile.dev").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.split()

    for name in ("worker", "beat"):
        assert entries[name][:4] == ["scripts/respawn.sh", "celery", "-A", "config"], name
        assert name in entries[name]
    assert os.access(REPO_DIR / "scripts" / "respawn.sh", os.X_OK)


def test_every_service_has_a_healthcheck(compose):
    for name in SERVICES:
        test = compose["services"][name]["healthcheck"]["test"]
        assert test and test[0] in {"CMD", "CMD-SHELL"}, name

    checks = {name: " ".join(compose["services"][name]["healthcheck"]["test"]) for name in SERVICES}
    assert "/healthz/" in checks["web"]
    assert "urllib" in checks["web"]  # the slim image has no curl
    assert "redis-cli ping" in checks["redis"]
    assert "pg_isready" in checks["postgres"]


def test_python_healthchecks_compile(compose):
    for name, service in compose["services"].items():
        test = service["healthcheck"]["test"]
        if test[:3] == ["CMD", "python", "-c"]:
            compile(test[3], f"{name} healthcheck", "exec")


def test_named_volumes_hold_the_data(compose):
    assert set(compose["volumes"]) >= {"postgres-data", "redis-data", "media"}
    services = compose["services"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert any(volume.startswith("media:") for volume in services["web"]["volumes"])


def test_dockerfile_builds_a_non_root_production_image():
    dockerfile = (REPO_DIR / "Dockerfile").read_text()
    instructions = [line.strip() for line in dockerfile.splitlines() if line.strip()]

    assert instructions[[i.startswith("#") for i in instructions].index(False)].startswith(
        "FROM python:3.11-slim"
    )
    assert re.search(r"^RUN pip install \.$", dockerfile, re.MULTILINE)
    assert "collectstatic" in dockerfile
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}


def test_dockerfile_copies_every_package_the_project_ships():
    """The Dockerfile copies folders one by one (keeping .env and .venv out of the image)."""
    dockerfile = (REPO_DIR / "Dockerfile").read_text()
    copied = {
        word.rstrip("/")
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for word in line.split()[1:-1]
    }
    pyproject = tomllib.loads((REPO_DIR / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in patterns}
    # Project-level data folders that settings read from BASE_DIR, once they exist.
    packages |= {name for name in ("templates", "locale") if (REPO_DIR / name).is_dir()}

    assert {"manage.py", "pyproject.toml"} <= copied
    assert packages <= copied, f"add COPY lines to the Dockerfile for {packages - copied}"


def test_procfile_has_web_worker_and_beat():
    entries = {}
    for line in (REPO_DIR / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.split()

    assert {"web", "worker", "beat"} <= set(entries)
    assert entries["web"][0] == "gunicorn"
    assert "$PORT" in " ".join(entries["web"])
    assert entries["worker"][:3] == ["celery", "-A", "config"]
    assert "worker" in entries["worker"]
    assert entries["beat"][:3] == ["celery", "-A", "config"]
    assert "beat" in entries["beat"]


def test_ci_runs_make_test():
    ci = REPO_DIR / ".ci" / "run"

    assert ci.is_file()
    assert os.access(ci, os.X_OK)
    text = ci.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert re.search(r"^exec make test$", text, re.MULTILINE)


def test_readme_documents_make_run_and_make_test():
    readme = (REPO_DIR / "README.md").read_text()
    if not readme.strip():
        pytest.skip("README.md is still empty (the lead writes it)")

    assert "make run" in readme
    assert "make test" in readme
