"""One error vocabulary for the whole project.

``ApplicationError`` is an *anticipated* error: something a user did or asked for that cannot be
done, with a message fit to show them. Each app subclasses it in its own ``exceptions.py``.
Anything else that escapes is a bug and is handled as one (500, logged).
"""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """An anticipated error with a human message, a stable machine code and optional details."""

    default_code = "error"
    status_code = 400

    def __init__(
        self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, "extra": self.extra}


class NotFoundError(ApplicationError):
    """The object does not exist, or belongs to someone the caller may not see."""

    default_code = "not_found"
    status_code = 404


class ConflictError(ApplicationError):
    """The request is valid but the object's current state forbids it."""

    default_code = "conflict"
    status_code = 409


class TooManyAttemptsError(ApplicationError):
    """Refused until a waiting period ends: ``extra["retry_after_seconds"]`` says how long."""

    default_code = "locked_out"
    status_code = 429
