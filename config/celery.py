"""The Celery application: settings from Django's ``CELERY_*``, tasks found in the apps.

``celery -A config worker|beat`` without ``DJANGO_SETTINGS_MODULE`` runs production settings,
which refuse to start without their secrets; ``make run`` exports the development settings
(docs/adr/0009).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("chatcommerce")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
