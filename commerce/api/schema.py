"""OpenAPI helpers shared by every app's endpoints: the documented error responses."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from commerce.api.serializers import ErrorSerializer


def error_response(description: str, *examples: tuple[str, str, str]) -> OpenApiResponse:
    """An error response in the schema: ``{"message", "code", "extra"}`` with named examples
    given as ``(name, message, code)``."""
    return OpenApiResponse(
        response=ErrorSerializer,
        description=description,
        examples=[
            OpenApiExample(name, value={"message": message, "code": code, "extra": {}})
            for name, message, code in examples
        ],
    )
