"""Errors on workbench and enterprise pages are pages too: a clear message in the reader's language, the
status the API would answer, never a trace or another tenant's data. Every other path keeps problem+json."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from api.ui.auth import CsrfFailed, SignInRequired, sign_in_redirect
from api.ui.i18n import LANGUAGES, translate
from api.ui.render import language, page
from matcher.errors import MatcherError, invalid_input

logger = logging.getLogger(__name__)
HTML_PREFIXES = ("/ui", "/p/")

Handler = Callable[[Request, Exception], Awaitable[Response]]


def is_page_path(path: str) -> bool:
    return path == "/ui" or path.startswith(HTML_PREFIXES)


def is_page(request: Request) -> bool:
    return is_page_path(request.url.path)


def error_page(
    request: Request,
    status: int,
    title: str,
    detail: str,
    errors: list | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    ctx = {"status": status, "title": title, "detail": detail, "errors": errors or []}
    template = "public/error.html" if request.url.path.startswith("/p/") else "error.html"
    return page(request, template, ctx, status=status, headers=headers)


def rate_limited_page(scope: Scope, wait: int) -> Response:
    """A 429 for a person: both languages (the reader's first), when to retry, and the Retry-After header."""
    request = Request(scope)
    first = language(request)
    order = [first, *(lang for lang in LANGUAGES if lang != first)]
    title = " / ".join(translate(lang, "ratelimit.title") for lang in order)
    detail = " ".join(translate(lang, "ratelimit.detail", seconds=wait) for lang in order)
    return error_page(request, 429, title, detail, headers={"Retry-After": str(wait)})


def _matcher_page(request: Request, exc: MatcherError) -> Response:
    lang = language(request)
    key = {404: "error.notfound", 403: "error.forbidden", 503: "error.unavailable"}.get(exc.status)
    if key is not None:  # the page's own words: a detail might name what the reader may not see
        return error_page(request, exc.status, translate(lang, "error.title"), translate(lang, key))
    if exc.status >= 500:
        return error_page(
            request, exc.status, translate(lang, "error.title"), translate(lang, "error.internal")
        )
    return error_page(request, exc.status, translate(lang, "error.invalid"), exc.detail, exc.errors)


def install_page_errors(app: FastAPI) -> None:
    """Wrap the app's handlers: pages get pages, the API keeps its problems."""
    api_handlers: dict[type, Handler] = dict(app.exception_handlers)  # type: ignore[arg-type]

    def fallback(kind: type) -> Handler:
        return api_handlers[kind]

    async def on_sign_in(request: Request, exc: SignInRequired) -> Response:
        return sign_in_redirect(request, exc.why)

    async def on_csrf(request: Request, exc: CsrfFailed) -> Response:
        lang = language(request)
        return error_page(request, 403, translate(lang, "csrf.title"), translate(lang, "csrf.detail"))

    async def on_matcher(request: Request, exc: MatcherError) -> Response:
        if not is_page(request):
            return await fallback(MatcherError)(request, exc)
        return _matcher_page(request, exc)

    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        if not is_page(request):
            return await fallback(RequestValidationError)(request, exc)
        return _matcher_page(request, invalid_input(exc.errors()))

    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_page(request):
            return await fallback(StarletteHTTPException)(request, exc)
        lang = language(request)
        if exc.status_code == 404:
            return error_page(request, 404, translate(lang, "error.title"), translate(lang, "error.notfound"))
        detail = exc.detail if isinstance(exc.detail, str) else translate(lang, "error.title")
        return error_page(request, exc.status_code, translate(lang, "error.title"), detail)

    async def on_any(request: Request, exc: Exception) -> Response:
        if not is_page(request):
            return await fallback(Exception)(request, exc)
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        lang = language(request)
        return error_page(request, 500, translate(lang, "error.title"), translate(lang, "error.internal"))

    app.add_exception_handler(SignInRequired, on_sign_in)  # type: ignore[arg-type]
    app.add_exception_handler(CsrfFailed, on_csrf)  # type: ignore[arg-type]
    app.add_exception_handler(MatcherError, on_matcher)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, on_http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_any)
