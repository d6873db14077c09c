"""Celery tasks: outbox."""

__all__: list[str] = []
