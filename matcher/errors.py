"""Domain errors that carry their HTTP status; the API renders them once as application/problem+json."""

from __future__ import annotations

from typing import Any


class MatcherError(Exception):
    status = 400
    title = "Bad request"
    type = "about:blank"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class ValidationFailed(MatcherError):
    status = 422
    title = "Validation failed"


class NotFound(MatcherError):
    status = 404
    title = "Not found"


class Forbidden(MatcherError):
    status = 403
    title = "Forbidden"


class Unauthorized(MatcherError):
    status = 401
    title = "Unauthorized"


class Conflict(MatcherError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(MatcherError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(MatcherError):
    status = 415
    title = "Unsupported media type"


class ServiceUnavailable(MatcherError):
    status = 503
    title = "Service unavailable"
