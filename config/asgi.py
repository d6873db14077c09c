"""ASGI entry point. Like ``config.wsgi``: production settings unless
``DJANGO_SETTINGS_MODULE`` names others (docs/adr/0009)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_asgi_application()
