"""WSGI entry point (gunicorn ``config.wsgi``).

Without ``DJANGO_SETTINGS_MODULE`` this is a production process: it runs
``config.settings.production``, which refuses to start without its secrets. Development
settings are chosen explicitly (``make run`` exports them); see docs/adr/0009.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

application = get_wsgi_application()
