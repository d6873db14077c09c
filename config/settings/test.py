"""Test settings: fast hashing, in-memory mail, and whatever database ``DATABASE_URL`` names.

``make test`` points ``DATABASE_URL`` at a throwaway PostgreSQL and ``REDIS_URL`` at a throwaway
Redis; without them the suite falls back to SQLite and the local Redis default.
"""

import os

os.environ.setdefault("SANDBOX_ENABLED", "true")

from config.settings.base import *  # noqa: F403
from config.settings.base import SECRET_KEY as _SECRET_KEY

SECRET_KEY = _SECRET_KEY or "test-secret-key-not-for-production-0123456789-abcdefghijklmnop"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MESSENGER_APP_SECRET = MESSENGER_APP_SECRET or "test-app-secret"  # noqa: F405
MESSENGER_VERIFY_TOKEN = MESSENGER_VERIFY_TOKEN or "test-verify-token"  # noqa: F405
STRIPE_SECRET_KEY = STRIPE_SECRET_KEY or "sk_test_123"  # noqa: F405
STRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET or "whsec_test_secret"  # noqa: F405
FIELD_ENCRYPTION_KEY = FIELD_ENCRYPTION_KEY or "test-field-encryption-key"  # noqa: F405
CELERY_TASK_ALWAYS_EAGER = False
# The cache (User Profiles, login throttles, rate limits) of each xdist worker in a namespace of
# its own: the workers share one Redis, and the same PSID or username in two workers' tests must
# not read each other's entries. The processes a test starts inherit the variable, and with it
# the namespace.
CACHES["default"]["KEY_PREFIX"] = f"cc-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"  # noqa: F405
# Live-server threads and in-thread workers end without closing a kept connection, which then
# stops the test database from being dropped at the end of the run: close after each request.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# Serve static files through the finders: the suite never runs collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
