"""Every process entry point runs production settings unless told otherwise (issue 12, item 16).

A deploy that forgets ``DJANGO_SETTINGS_MODULE`` must not come up with DEBUG on, the sandbox
mounted and the sandbox's public secrets (anyone could sign a webhook or a payment). gunicorn
(``config.wsgi``), an ASGI server (``config.asgi``), ``celery -A config`` and ``manage.py`` fall
back to ``config.settings.production``, which refuses to start without its secrets; only the
``manage.py`` commands that write files of the source tree fall back to the development
settings. Each case runs the real command line in a subprocess, with the variables of
``test_settings`` removed and the developer's ``.env`` ignored.
"""

from __future__ import annotations

import pytest

from tests.core.test_settings import production_env, run_python

# A .env file in the checkout must not fill in what a case leaves out. Unlike test_settings'
# WITHOUT_DOTENV this imports nothing of ``config``: importing that package already runs
# ``config.celery``, which would pick the settings module before the entry point under test.
WITHOUT_DOTENV = "import environ; environ.Env.read_env = staticmethod(lambda *a, **k: None); "
# The real command lines, run in-process by runpy after WITHOUT_DOTENV.
GUNICORN_CHECK = (
    WITHOUT_DOTENV + "import runpy, sys; "
    "sys.argv = ['gunicorn', 'config.wsgi', '--check-config']; "
    "runpy.run_module('gunicorn', run_name='__main__', alter_sys=True)"
)
CELERY = (
    WITHOUT_DOTENV + "import runpy, sys; sys.argv = ['celery', *sys.argv[1:]]; "
    "runpy.run_module('celery', run_name='__main__', alter_sys=True)"
)
MANAGE_PY = (
    WITHOUT_DOTENV + "import runpy, sys; sys.argv = ['manage.py', *sys.argv[1:]]; "
    "runpy.run_path('manage.py', run_name='__main__')"
)


def settings_in_use(entry_point: str) -> str:
    """Import ``entry_point`` as its server would, then describe the settings it got."""
    return (
        WITHOUT_DOTENV + f"import {entry_point}, django; django.setup(); "
        "from django.conf import settings; "
        "print(settings.SETTINGS_MODULE, settings.DEBUG, settings.SANDBOX_ENABLED, "
        "any(app.startswith('sandbox') for app in settings.INSTALLED_APPS))"
    )


def refused_for_missing_secret(result) -> bool:
    last_line = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else ""
    return (
        result.returncode != 0
        and last_line.startswith("django.core.exceptions.ImproperlyConfigured")
        and "SECRET_KEY" in last_line
    )


def test_gunicorn_without_a_settings_module_refuses_to_start_without_production_secrets():
    result = run_python(GUNICORN_CHECK, [], {})

    assert refused_for_missing_secret(result), result.stderr[-2000:]


def test_asgi_without_a_settings_module_refuses_to_start_without_production_secrets():
    result = run_python(WITHOUT_DOTENV + "import config.asgi", [], {})

    assert refused_for_missing_secret(result), result.stderr[-2000:]


def test_celery_without_a_settings_module_refuses_to_start_without_production_secrets():
    # ``report`` loads the configuration exactly as ``worker`` and ``beat`` do, then exits.
    result = run_python(CELERY, ["-A", "config", "report"], {})

    assert result.returncode != 0
    assert "ImproperlyConfigured: Set the SECRET_KEY environment variable." in result.stderr


def test_manage_py_without_a_settings_module_refuses_and_says_which_settings_it_used():
    result = run_python(MANAGE_PY, ["check"], {})

    assert refused_for_missing_secret(result), result.stderr[-2000:]
    assert "DJANGO_SETTINGS_MODULE is not set, so config.settings.production" in result.stderr
    assert "DJANGO_SETTINGS_MODULE=config.settings.dev" in result.stderr


@pytest.mark.parametrize("entry_point", ["config.wsgi", "config.asgi", "config.celery"])
def test_a_configured_deploy_without_a_settings_module_serves_production_settings(entry_point):
    settings_env = production_env()
    del settings_env["DJANGO_SETTINGS_MODULE"]

    result = run_python(settings_in_use(entry_point), [], settings_env)

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["config.settings.production", "False", "False", "False"]


def test_manage_py_of_a_configured_deploy_without_a_settings_module_passes_check_deploy():
    settings_env = production_env()
    del settings_env["DJANGO_SETTINGS_MODULE"]
    settings_env["DATABASE_URL"] = "postgres://u:p@127.0.0.1:9/db"  # nobody listens: not needed

    result = run_python(MANAGE_PY, ["check", "--deploy", "--fail-level", "WARNING"], settings_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("entry_point", ["config.wsgi", "config.celery"])
def test_an_explicit_settings_module_still_wins(entry_point):
    result = run_python(
        settings_in_use(entry_point), [], {"DJANGO_SETTINGS_MODULE": "config.settings.dev"}
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["config.settings.dev", "True", "True", "True"]


def test_source_tree_commands_default_to_the_development_settings(tmp_path):
    """``makemigrations`` and the translation commands write files of the checkout; they run
    as they always did (the sandbox apps, installed only in development, have migrations)."""
    result = run_python(
        MANAGE_PY,
        ["makemigrations", "--check", "--dry-run"],
        {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
