"""Production: every secret must come from the environment, and ``check --deploy`` is clean.

Importing this module without ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL``,
``PUBLIC_BASE_URL`` or the integration secrets raises ``ImproperlyConfigured`` naming the variable,
so a misconfigured web or worker process refuses to start instead of running half-configured.
The sandbox is never mounted here, whatever ``SANDBOX_ENABLED`` says.
"""

import os

from django.core.exceptions import ImproperlyConfigured

os.environ["SANDBOX_ENABLED"] = "false"
os.environ.setdefault("DEBUG", "false")

from config.env import env_bool, env_database, env_int, env_list, env_str, env_url
from config.settings.base import *  # noqa: F403

if env_bool("DEBUG"):
    raise ImproperlyConfigured("DEBUG must be false in production settings.")

SECRET_KEY = env_str("SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters in production.")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list at least one host name.")
DATABASES = {"default": env_database("DATABASE_URL")}
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", schemes=("https",))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL])
MESSENGER_APP_SECRET = env_str("MESSENGER_APP_SECRET")
MESSENGER_VERIFY_TOKEN = env_str("MESSENGER_VERIFY_TOKEN")
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz/$", r"^readyz/$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SERVE_MEDIA = env_bool("SERVE_MEDIA", False)
