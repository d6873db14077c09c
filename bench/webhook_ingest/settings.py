"""Settings of the ingest benchmark: the benchmarks' settings (``bench/settings.py``), plus a
no-op view to compare against (bench/webhook_ingest/urls.py). Nothing here is part of the
application."""

from bench.settings import *  # noqa: F403

ROOT_URLCONF = "bench.webhook_ingest.urls"
