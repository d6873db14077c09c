"""Celery tasks: inbox."""

__all__: list[str] = []
