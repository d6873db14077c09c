"""Stripe's error vocabulary: ``{"error": {"type", "code", "message", "param", ...}}`` + status."""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An answer Stripe would give instead of an object (rendered by the API view)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> StripeError:
    return StripeError(message, param=param, code=code)


def missing(kind: str, object_id: str, *, param: str = "id") -> StripeError:
    """Stripe's 404 for an id it does not know."""
    return StripeError(
        f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param=param
    )


def as_int(value: Any, param: str) -> int:
    """A form value as an integer, or Stripe's ``parameter_invalid_integer``."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise StripeError(
            f"Invalid integer: {value}", param=param, code="parameter_invalid_integer"
        ) from None
