"""One place that renders every error as application/problem+json (RFC 9457) without leaking internals."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from matcher.errors import MatcherError, invalid_input

logger = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _render(exc: MatcherError) -> JSONResponse:
    return problem(exc.status, exc.title, exc.detail, errors=exc.errors, **exc.extra)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(MatcherError)
    async def _domain(_: Request, exc: MatcherError) -> JSONResponse:
        return _render(exc)

    # a request FastAPI refuses before any route runs is described by the core like any other invalid input
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _render(invalid_input(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not found", 405: "Method not allowed", 401: "Unauthorized", 403: "Forbidden"}
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        resp = problem(exc.status_code, titles.get(exc.status_code, "Error"), detail)
        if exc.headers:
            resp.headers.update(exc.headers)
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
