"""Domain errors that carry their HTTP status; the API renders them once as application/problem+json."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matcher.domain.schemas import RESOURCE_KINDS


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


# ---------------------------------------------------------------- the one formatter of validation problems

# where pydantic says a request value came from; not part of the field's name
_LOCATIONS = ("body", "query", "path", "header")


def invalid(field: str, message: str, type_: str = "value_error") -> ValidationFailed:
    """One field's problem, as every validation problem is reported: detail 'field: message' and its errors entry."""
    return ValidationFailed(
        f"{field}: {message}", errors=[{"field": field, "message": message, "type": type_}]
    )


def _field(loc: Sequence[str | int], prefix: str, whole: str) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _LOCATIONS:
        parts = parts[1:]
    # a tagged union puts the tag first (fund.details.x): the tag is the value of `kind`, not a field
    if len(parts) > 1 and parts[0] in RESOURCE_KINDS:
        parts = parts[1:]
    return ".".join([prefix, *parts] if prefix else parts) or prefix or whole


def _message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "missing":
        return "required"
    if error.get("type") == "json_invalid":
        return "malformed JSON: " + str(error.get("ctx", {}).get("error", error.get("msg", "invalid")))
    return str(error.get("msg", "invalid"))


def invalid_input(
    errors: Sequence[Mapping[str, Any]], *, prefix: str = "", whole: str = "body"
) -> ValidationFailed:
    """pydantic's errors (a model's or a request's) as one ValidationFailed: each as {field, message, type}, the
    detail the first one's 'field: message' with '(and N more)'. `prefix` names the model's place in a larger
    record (details); `whole` names the record itself when the error is about no one field."""
    out = [
        {"field": _field(e.get("loc", ()), prefix, whole), "message": _message(e), "type": e.get("type")}
        for e in errors
    ] or [{"field": prefix or whole, "message": "invalid", "type": "value_error"}]
    detail = f"{out[0]['field']}: {out[0]['message']}"
    if len(out) > 1:
        detail += f" (and {len(out) - 1} more)"
    return ValidationFailed(detail, errors=out)
