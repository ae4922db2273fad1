"""One place that renders every error as application/problem+json (RFC 9457) without leaking internals."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from matcher.errors import MatcherError, invalid_input

logger = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
REALM = "parkmatch"


class FieldProblem(BaseModel):
    field: str = Field(description="the field at fault, dotted (details.trl, items.0)")
    message: str
    type: str = Field(description="a stable code: missing, string_too_long, conflict ...")


class Problem(BaseModel):
    """An error as RFC 9457 problem details; validation problems list each field at fault."""

    model_config = ConfigDict(extra="allow")  # some problems carry more fields, named in their detail
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def problem_response(description: str) -> dict[str, Any]:
    """A documented problem response: application/problem+json with the Problem schema."""
    return {
        "description": description,
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


# what any authenticated /v1 operation may answer besides its success; documented once, router by router
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: problem_response("the body cannot be parsed (not JSON, a broken multipart, a bad Content-Length)"),
    401: {
        **problem_response("no API key, or one that is invalid or revoked"),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}},
    },
    403: problem_response("the key's role may not do this"),
    404: problem_response("no such record in what the caller may see"),
    409: problem_response(
        "conflicts with the current state (an external_id taken, an idempotency key reused, details that do not "
        "fit the stored resource's kind or its other details)"
    ),
    413: problem_response("the body is over the size limit"),
    422: problem_response("the request is invalid; `errors` names each field at fault"),
    429: problem_response("too many requests; retry after the Retry-After header's seconds"),
}
# operations that need the match engine answer 503 while its indexes load
UNAVAILABLE_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: problem_response("the matching indexes are still loading; retry shortly")
}


def add_problem_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put the Problem schema (and its parts) in the document's components, where the responses refer to it."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    return openapi


def _challenge(request: Request) -> str:
    """RFC 6750: a request without credentials gets the bare challenge, one with a bad key `invalid_token`."""
    if request.headers.get("authorization"):
        return f'Bearer realm="{REALM}", error="invalid_token"'
    return f'Bearer realm="{REALM}"'


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _render(exc: MatcherError) -> JSONResponse:
    return problem(exc.status, exc.title, exc.detail, errors=exc.errors, **exc.extra)


class AllowedMethods:
    """Every method the app serves at a request's path, for a 405's `Allow` (RFC 9110): Starlette's own 405
    names only the methods of the one route it tried, not those of the other routes at the same path. Read
    once from the app's OpenAPI document, whose paths are its routes (included routers and all)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._paths: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _compiled(self) -> list[tuple[re.Pattern[str], frozenset[str]]]:
        if self._paths is None:  # on the first 405, when every router is mounted
            paths: dict[str, dict[str, Any]] = self._app.openapi()["paths"]
            self._paths = [
                (compile_path(path)[0], frozenset(m.upper() for m in item) & _METHODS)
                for path, item in paths.items()
            ]
        return self._paths

    def header(self, request: Request) -> str | None:
        path = request.scope["path"]
        served = set().union(*(methods for regex, methods in self._compiled() if regex.match(path)))
        return ", ".join(sorted(served)) if served else None


_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"})


def install_error_handlers(app: FastAPI) -> None:
    allowed = AllowedMethods(app)

    @app.exception_handler(MatcherError)
    async def _domain(request: Request, exc: MatcherError) -> JSONResponse:
        resp = _render(exc)
        if (retry_after := getattr(exc, "retry_after", None)) is not None:
            resp.headers["Retry-After"] = str(retry_after)
        if exc.status == 401:
            resp.headers["WWW-Authenticate"] = _challenge(request)
        return resp

    # a request FastAPI refuses before any route runs is described by the core like any other invalid input
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _render(invalid_input(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        resp = problem(exc.status_code, titles.get(exc.status_code, "Error"), detail)
        if exc.headers:
            resp.headers.update(exc.headers)
        if exc.status_code == 405 and (allow := allowed.header(request)):
            resp.headers["Allow"] = allow
        if exc.status_code == 401 and "WWW-Authenticate" not in resp.headers:
            resp.headers["WWW-Authenticate"] = _challenge(request)
        return resp

    # a number the database cannot hold (an id beyond 64 bits in a path or body); the request's transaction is
    # rolled back with its session, so nothing already accepted is touched
    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        logger.info("out-of-range number on %s %s", request.method, request.url.path)
        return problem(
            422, "Validation failed", "a number in the request is out of range (integers must fit in 64 bits)"
        )

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        logger.info(
            "value the database refused on %s %s: %s",
            request.method,
            request.url.path,
            type(exc.orig).__name__,
        )
        return problem(
            422,
            "Validation failed",
            "a value in the request cannot be stored: out of range or not valid for the database",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "the server failed to handle this request; it has been logged")
