"""Settings of the benchmarks' service: the project's base settings, logging kept to warnings
(a log line per request or task would cost the same as the work measured). Nothing else: the
service runs as deployed."""

from config.settings.base import *  # noqa: F403

DEBUG = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
