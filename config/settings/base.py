"""Settings shared by every environment. Everything deployment-specific comes from the environment.

See README.md ("Configuration") for every variable. ``dev`` (the default), ``test`` and
``production`` build on this module.
"""

from __future__ import annotations

from datetime import timedelta

from celery.schedules import crontab  # noqa: F401  (kept for beat entries added by the apps)

from config.env import (
    BASE_DIR,
    env_bool,
    env_database,
    env_int,
    env_list,
    env_str,
    env_url,
    read_dotenv,
)

read_dotenv()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")  # dev/test supply a default; production requires it
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000", schemes=("http", "https"))
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [PUBLIC_BASE_URL])
SANDBOX_ENABLED = env_bool("SANDBOX_ENABLED", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "commerce",
    "payments",
    "messenger",
    "dashboard",
]
if SANDBOX_ENABLED:
    INSTALLED_APPS += ["sandbox", "sandbox.meta", "sandbox.stripe"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env_database("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss"))
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cc",
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

# Every password check goes through this backend, which applies one lockout per username and
# client address to all of them: LOGIN_MAX_FAILURES failures within LOGIN_WINDOW_SECONDS lock
# the pair until the window ends (core/login_lockout.py, docs/adr/0009).
AUTHENTICATION_BACKENDS = ["core.auth_backends.LockoutModelBackend"]
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5, minimum=1)
LOGIN_WINDOW_SECONDS = env_int("LOGIN_WINDOW_SECONDS", 15 * 60, minimum=60)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ar", "العربية")]
# Each app keeps its own catalog (<app>/locale/ar); this is only makemessages' fallback.
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = env_str("MEDIA_ROOT", str(BASE_DIR / "media"))
SERVE_MEDIA = env_bool("SERVE_MEDIA", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Uploads: product images are small; anything bigger is refused with a clear message.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
PRODUCT_IMAGE_MAX_BYTES = env_int("PRODUCT_IMAGE_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
PRODUCT_IMAGE_MAX_PIXELS = 4096
CATALOG_IMPORT_MAX_BYTES = env_int("CATALOG_IMPORT_MAX_BYTES", 20 * 1024 * 1024, minimum=1024)

# Integrations (validated by system checks, read when used).
MESSENGER_APP_SECRET = env_str("MESSENGER_APP_SECRET", "")
MESSENGER_VERIFY_TOKEN = env_str("MESSENGER_VERIFY_TOKEN", "")
# Messenger webhook bodies larger than this are refused with 413 before the signature check.
MESSENGER_WEBHOOK_MAX_BYTES = env_int("MESSENGER_WEBHOOK_MAX_BYTES", 256 * 1024, minimum=1024)
GRAPH_API_BASE = env_url("GRAPH_API_BASE", "https://graph.facebook.com", schemes=("http", "https"))
GRAPH_API_VERSION = env_str("GRAPH_API_VERSION", "v25.0")
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = env_url("STRIPE_API_BASE", "https://api.stripe.com", schemes=("http", "https"))
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY", "")

# Orders.
STOCK_RESERVATION_MINUTES = env_int("STOCK_RESERVATION_MINUTES", 30, minimum=1)

# REST API. Tokens are stored hashed and shown once; they expire API_TOKEN_TTL_DAYS after they
# are issued (commerce/services/api_tokens.py).
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 30, minimum=1)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "commerce.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Chat commerce API",
    "DESCRIPTION": "Catalog, carts and orders of merchants selling in Messenger.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Serve Swagger UI from the installed sidecar package: nothing is fetched from the internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery (Redis broker). Tasks take ids, are idempotent, and are enqueued after commit.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 30, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 60, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Losing Redis must not end a worker (docs/adr/0009): wait for it at start-up, and after a lost
# connection keep reconnecting however long it takes (the default gives up after 100 tries
# and exits). Tasks still running when the connection drops are not killed (Celery's default,
# set here on purpose): they are idempotent and finish their work, so their redelivery finds it
# done, where a task killed after its Graph call but before its commit would send twice.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2}
CELERY_TIMEZONE = "UTC"
# The apps add their periodic tasks here (expiry, inbox sweep, reminders) as their issues land.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "core-heartbeat": {"task": "core.tasks.heartbeat", "schedule": timedelta(minutes=1)},
    # Unpaid orders past their reservation: expire them and release the stock. A run
    # still queued after 55 s is dropped: the next one does the same work.
    "commerce-expire-unpaid-orders": {
        "task": "commerce.tasks.expire_unpaid_orders",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 55},
    },
    # Stripe webhook events stored but not processed within a minute (enqueue lost with
    # Redis, worker died, retry chain lost): queue them again. Dropped if queued over 25 s.
    "payments-sweep-provider-events": {
        "task": "payments.tasks.sweep_provider_events",
        "schedule": timedelta(seconds=30),
        "options": {"expires": 25},
    },
    # Refunds whose next try or status check is due (their task was lost with Redis, or the
    # provider's webhook never came): queue them. Dropped if still queued after 55 s.
    "payments-sweep-refunds": {
        "task": "payments.tasks.sweep_refunds",
        "schedule": timedelta(minutes=1),
        "options": {"expires": 55},
    },
    # Inbox rows pending for over a minute (nudge lost with Redis, worker died, failed and
    # waiting for a retry): publish one drain. A run still queued after 25 s is dropped.
    "messenger-inbox-sweep": {
        "task": "messenger.tasks.inbox.inbox_sweep",
        "schedule": timedelta(seconds=30),
        "options": {"expires": 25},
    },
    # Outbox rows whose delivery task was lost (Redis down at publish, worker died): publish
    # their customers' deliveries again. A run still queued after 25 s is dropped.
    # The dashboard's funnel (conversations, carts, checkouts) for today and yesterday,
    # recounted from the inbox, carts and payments. Dropped if still queued after 4 minutes.
    "dashboard-funnel-refresh": {
        "task": "dashboard.tasks.funnel_refresh",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 240},
    },
    "messenger-outbox-sweep": {
        "task": "messenger.tasks.outbox.outbox_sweep",
        "schedule": timedelta(seconds=30),
        "options": {"expires": 25},
    },
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "shop@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # urllib3 logs full request URLs at DEBUG, and Graph API URLs carry the page token.
        "urllib3": {"level": "WARNING"},
    },
}
