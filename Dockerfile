# One image for web, worker and beat (see docker-compose.yml and Procfile).
# Settings: config.settings.production, configured entirely through the environment; it refuses
# to start without its secrets (README, "Configuration").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Run the code in /app (BASE_DIR = /app: static files, media, templates), not the copy
    # that `pip install .` also puts in site-packages for its dependencies.
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    PORT=8000

WORKDIR /app
RUN useradd --system --create-home --home-dir /home/app --uid 10001 app

# Copy only what the service runs, so no .env, .venv, database or media from the build context
# ends up in the image. A new top-level package or data folder must be listed here too
# (tests/test_deployment.py checks the packages).
COPY pyproject.toml README.md manage.py ./
COPY config ./config
COPY core ./core
COPY commerce ./commerce
COPY messenger ./messenger
COPY payments ./payments
COPY dashboard ./dashboard
COPY sandbox ./sandbox
RUN pip install .

# Static files are built into the image (served by WhiteNoise). The settings need their
# variables to import; these throwaway values exist only during this build step.
RUN SECRET_KEY=build-only-collectstatic-0123456789-abcdefghijklmnopqrstuvwxyz \
    ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    PUBLIC_BASE_URL=https://build.invalid \
    MESSENGER_APP_SECRET=build MESSENGER_VERIFY_TOKEN=build \
    STRIPE_SECRET_KEY=build STRIPE_WEBHOOK_SECRET=build \
    FIELD_ENCRYPTION_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput -v0 \
    && rm -f /tmp/build.sqlite3 \
    && mkdir -p /app/media \
    && chown app:app /app/media

USER app
EXPOSE 8000
CMD ["sh", "-c", "exec gunicorn config.wsgi --bind 0.0.0.0:${PORT} --workers ${WEB_CONCURRENCY:-2} --worker-class gthread --threads ${WEB_THREADS:-8} --access-logfile -"]
