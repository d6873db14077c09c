"""Settings of the ingest benchmark: the project's base settings, plus a no-op view to compare
against (bench/webhook_ingest/urls.py). Nothing here is part of the application."""

from config.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.webhook_ingest.urls"
DEBUG = False
# Logging costs the same in both measurements; keep it to warnings so it does not dominate.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
