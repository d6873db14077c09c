"""Celery tasks: profile."""

__all__: list[str] = []
