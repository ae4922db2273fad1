"""ASGI middleware: a request id on every response, header and body size limits and request rate limits, all
enforced before any parsing."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from api.metrics import MetricsMiddleware, ServiceMetrics
from api.ratelimit import RateLimitMiddleware
from matcher.settings import Settings
from matcher.store import audit

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
IMPORT_FRAMING_BYTES = 1 << 20


async def _send_problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestIdMiddleware:
    """Echo a well-formed incoming X-Request-ID or mint one; handlers read it as request.state.request_id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with audit.request_scope(request_id):  # audit events of this request carry its id
            await self.app(scope, receive, send_with_id)


class HeaderLimitMiddleware:
    """Refuse requests whose header names and values add up to more than `max_bytes` with 431. `matcher serve`
    stops reading a request head a little past the same limit; this answers behind any other server too."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # each header line also carries ": " and CRLF
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:
                detail = f"the request headers take {size:,} bytes, over the limit of {self.max_bytes:,}"
                response = problem(431, "Request header fields too large", detail)
                response.headers["Connection"] = "close"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse bodies over a byte limit with 413: by Content-Length up front, and by counting streamed chunks
    (chunked uploads carry no length), so an oversized body is never buffered or parsed.

    `overrides` maps path patterns (regular expressions, searched) to their own limits: file imports are larger
    than JSON records. The first pattern that matches wins."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, overrides: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = [(re.compile(pattern), limit) for pattern, limit in (overrides or {}).items()]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.overrides:
            if pattern.search(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        too_large = f"the request body is larger than the limit of {limit:,} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_problem(send, 400, "Bad request", "Content-Length is not a number")
                return
            if declared > limit:
                await _send_problem(send, 413, "Payload too large", too_large)
                return

        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app made of the aborted read is replaced by the 413 below
                if not started:
                    started = True
                    await _send_problem(send, 413, "Payload too large", too_large)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                await _send_problem(send, 413, "Payload too large", too_large)
        except Exception:
            if not exceeded:
                raise
            if not started:
                await _send_problem(send, 413, "Payload too large", too_large)


def install_middleware(app: FastAPI, settings: Settings, metrics: ServiceMetrics) -> None:
    """From the outside in: request id (so even a 413 carries it), metrics (refusals counted too), header limit, rate limit (before the body is
    read or a session opened), body limit."""
    # file imports (POST /v1/resources:import ...) enforce their own, larger limit; leave room for multipart framing
    import_limit = settings.max_import_bytes + IMPORT_FRAMING_BYTES
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        overrides={
            r":import$": import_limit,
            r"^/v1/imports?(/|$)": import_limit,
            r"^/ui/import$": import_limit,
        },
    )
    app.add_middleware(RateLimitMiddleware, settings=settings)
    app.add_middleware(HeaderLimitMiddleware, max_bytes=settings.max_header_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
