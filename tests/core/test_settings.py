"""Settings refuse to start half-configured, and production passes ``check --deploy``.

Each case runs Django in a subprocess with a controlled environment: settings are read once per
process, and the point is what a real ``gunicorn``/``celery`` start-up would do.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[2]

# Everything the settings modules read; removed from the inherited environment so the test
# runner's own DATABASE_URL, REDIS_URL, DJANGO_SETTINGS_MODULE... cannot leak into a case.
SETTINGS_VARS = {
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    "CSRF_TRUSTED_ORIGINS",
    "SANDBOX_ENABLED",
    "MESSENGER_APP_SECRET",
    "MESSENGER_VERIFY_TOKEN",
    "GRAPH_API_BASE",
    "GRAPH_API_VERSION",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "FIELD_ENCRYPTION_KEY",
    "MEDIA_ROOT",
    "SERVE_MEDIA",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "LOG_LEVEL",
}

# config.env.read_dotenv() would fill removed variables back in from a developer's .env file;
# the subprocess turns it off first so every case sees exactly the environment it was given.
WITHOUT_DOTENV = "import config.env; config.env.read_dotenv = lambda path=None: None; "
DJANGO_SETUP = WITHOUT_DOTENV + "import django; django.setup()"
MANAGE = (
    WITHOUT_DOTENV + "import sys; from django.core.management import execute_from_command_line; "
    "execute_from_command_line(['manage.py', *sys.argv[1:]])"
)


def production_env() -> dict[str, str]:
    """A complete, valid production configuration that needs no live server to import."""
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "shop.example.com",
        "DATABASE_URL": "postgres://u:p@127.0.0.1:5432/db",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "PUBLIC_BASE_URL": "https://shop.example.com",
        "MESSENGER_APP_SECRET": secrets.token_hex(16),
        "MESSENGER_VERIFY_TOKEN": secrets.token_urlsafe(24),
        "STRIPE_SECRET_KEY": "sk_live_" + secrets.token_hex(24),
        "STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(24),
        "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }


def run_python(
    code: str, args: list[str], settings_env: dict[str, str], *, without: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS_VARS}
    env.update(settings_env)
    for name in without:
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def django_setup(settings_env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    """``python -c "import django; django.setup()"``: what every process does at start-up."""
    return run_python(DJANGO_SETUP, [], settings_env, **kwargs)


def manage(args: list[str], settings_env: dict[str, str]) -> subprocess.CompletedProcess:
    """``manage.py ARGS`` (with the .env file ignored, see above)."""
    return run_python(MANAGE, args, settings_env)


def test_complete_production_configuration_starts():
    result = django_setup(production_env())

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "name",
    [
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "DATABASE_URL",
        "PUBLIC_BASE_URL",
        "MESSENGER_APP_SECRET",
        "MESSENGER_VERIFY_TOKEN",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "FIELD_ENCRYPTION_KEY",
    ],
)
def test_production_refuses_to_start_without(name):
    result = django_setup(production_env(), without=(name,))

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr.splitlines()[-1], result.stderr


@pytest.mark.parametrize("value", ["", "short-key", "x" * 60])
def test_production_refuses_a_weak_secret_key(value):
    result = django_setup({**production_env(), "SECRET_KEY": value})

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr.splitlines()[-1], result.stderr


def test_production_refuses_debug():
    result = django_setup({**production_env(), "DEBUG": "true"})

    assert result.returncode != 0
    assert "DEBUG" in result.stderr.splitlines()[-1], result.stderr


def test_production_refuses_a_plain_http_public_base_url():
    result = django_setup({**production_env(), "PUBLIC_BASE_URL": "http://shop.example.com"})

    assert result.returncode != 0
    assert "PUBLIC_BASE_URL" in result.stderr.splitlines()[-1], result.stderr


@pytest.mark.parametrize(
    ("settings_module", "name", "value"),
    [
        ("config.settings.dev", "DEBUG", "maybe"),
        ("config.settings.dev", "REDIS_URL", "http://x"),
        ("config.settings.dev", "DATABASE_URL", "nonsense"),
        ("config.settings.dev", "STOCK_RESERVATION_MINUTES", "soon"),
        ("config.settings.production", "REDIS_URL", "http://x"),
        ("config.settings.production", "DATABASE_URL", "nonsense"),
        ("config.settings.production", "DATABASE_URL", "postgres://u:p@127.0.0.1:5432/"),
    ],
)
def test_malformed_value_stops_start_up_naming_the_variable(settings_module, name, value):
    settings_env = production_env() if settings_module.endswith("production") else {}
    settings_env.update({"DJANGO_SETTINGS_MODULE": settings_module, name: value})

    result = django_setup(settings_env)

    assert result.returncode != 0
    last_line = result.stderr.splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured"), result.stderr
    assert name in last_line


def test_production_passes_check_deploy_without_a_database():
    # DATABASE_URL points at a port nobody listens on: the check must not need the database.
    result = manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {**production_env(), "DATABASE_URL": "postgres://u:p@127.0.0.1:9/db"},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_missing_messenger_secret_is_a_check_error_when_debug_is_off():
    # dev settings default the secrets to the sandbox's values; an empty value means "not set".
    result = manage(
        ["check"],
        {"DJANGO_SETTINGS_MODULE": "config.settings.dev", "DEBUG": "false"},
    )
    assert result.returncode == 0, result.stderr

    result = manage(
        ["check"],
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.dev",
            "DEBUG": "false",
            "MESSENGER_APP_SECRET": "",
        },
    )

    assert result.returncode != 0
    assert "core.E001" in result.stderr
    assert "MESSENGER_APP_SECRET" in result.stderr


def test_sqlite_database_waits_for_the_lock_instead_of_failing(monkeypatch, tmp_path):
    """`make run` writes to one SQLite file from web, worker and beat at once."""
    from config.env import env_database

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite3")
    options = env_database("DATABASE_URL", "sqlite:///unused.sqlite3")["OPTIONS"]

    assert options["timeout"] >= 10
    assert "journal_mode=WAL" in options["init_command"]
    # A transaction takes the write lock when it begins (tests/core/test_sqlite_locking.py).
    assert options["transaction_mode"] == "IMMEDIATE"


def test_postgres_database_gets_no_sqlite_options(monkeypatch):
    from config.env import env_database

    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@127.0.0.1:5432/shop")
    config = env_database("DATABASE_URL", "sqlite:///unused.sqlite3")

    assert "init_command" not in config.get("OPTIONS", {})
    assert config["CONN_HEALTH_CHECKS"] is True
