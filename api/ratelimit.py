"""ASGI middleware charging each request to its API key's and tenant's token buckets before any body is read."""

from __future__ import annotations

import re

from anyio import to_thread
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem
from api.ui.auth import SESSION_COOKIE
from api.ui.errors import is_page_path, rate_limited_page
from matcher.quota.buckets import Buckets, Charge, Decision, whole_seconds
from matcher.quota.identity import VerifiedKeys, VerifiedSessions
from matcher.quota.policy import anonymous_charges, key_charges, make_buckets, person_charges, route_cost
from matcher.settings import Settings

_REVOKE = re.compile(r"^/v1/keys/(\d+)$")


def _session_cookie(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, token = part.strip().partition("=")
                if key == SESSION_COOKIE and token:
                    return token
    return None


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return (token.strip() or None) if scheme.lower() == "bearer" else None
    return None


def rate_headers(decision: Decision) -> list[tuple[bytes, bytes]]:
    """The IETF draft's RateLimit-* fields, for the tightest bucket the request was charged to."""
    return [
        (b"ratelimit-limit", str(int(decision.limit)).encode()),
        (b"ratelimit-remaining", str(int(decision.remaining)).encode()),
        (b"ratelimit-reset", str(whole_seconds(decision.reset)).encode()),
    ]


def _refusal(scope: Scope, wait: int) -> Response:
    """A person on a workbench or enterprise page gets a page; everyone else the API's problem."""
    if is_page_path(scope["path"]):
        return rate_limited_page(scope, wait)
    return problem(
        429,
        "Too many requests",
        f"this API key or its tenant is over its request rate; retry in {wait} s",
        retry_after=wait,
    )


class RateLimitMiddleware:
    """Over the limit: 429 with Retry-After (problem+json; a page for the workbench and enterprise pages), before the route parses anything or opens a session.
    A key is verified against the store once per `rate_key_cache_s`; a request without a valid key is charged
    to its client address (the route then refuses it as usual)."""

    def __init__(self, app: ASGIApp, *, settings: Settings, buckets: Buckets | None = None) -> None:
        self.app = app
        self.settings = settings
        self.buckets = buckets or make_buckets(settings)
        self._keys: VerifiedKeys | None = None
        self._sessions: VerifiedSessions | None = None

    def _verified_keys(self, scope: Scope) -> VerifiedKeys | None:
        state = getattr(scope["app"].state, "app_state", None) if "app" in scope else None
        if state is None:  # the lifespan has not run: no store to verify against
            return None
        if self._keys is None or self._keys.db is not state.db:
            self._keys = VerifiedKeys(state.db, ttl_s=self.settings.rate_key_cache_s)
        return self._keys

    def _verified_sessions(self, scope: Scope) -> VerifiedSessions | None:
        state = getattr(scope["app"].state, "app_state", None) if "app" in scope else None
        if state is None:
            return None
        if self._sessions is None or self._sessions.db is not state.db:
            self._sessions = VerifiedSessions(state.db, self.settings, ttl_s=self.settings.rate_key_cache_s)
        return self._sessions

    async def _person(self, scope: Scope) -> list[Charge] | None:
        """A person signed in to the workbench pays into their own bucket rather than their address's."""
        cookie = _session_cookie(scope)
        found = self._verified_sessions(scope) if cookie else None
        if cookie is None or found is None:
            return None
        known, identity = found.cached(cookie)
        if not known:
            identity = await to_thread.run_sync(found.resolve, cookie)
        return None if identity is None else person_charges(self.settings, identity.tenant, identity.key_id)

    async def _charges(self, scope: Scope) -> list[Charge]:
        token = _bearer(scope)
        if token is None and (person := await self._person(scope)) is not None:
            return person
        keys = self._verified_keys(scope) if token else None
        if token and keys is not None:
            known, identity = keys.cached(keys.digest(token))
            if not known:
                identity = await to_thread.run_sync(keys.resolve, token)
            if identity is not None:
                return key_charges(self.settings, identity.tenant, identity.key_id)
        client = scope.get("client")
        return anonymous_charges(self.settings, client[0] if client else "unknown")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.rate_limit_enabled:
            await self.app(scope, receive, send)
            return
        cost = route_cost(self.settings, scope["path"])
        if cost <= 0:
            await self.app(scope, receive, send)
            return
        decision = await self.buckets.take(await self._charges(scope), cost)
        headers = rate_headers(decision)
        if not decision.allowed:
            wait = max(1, whole_seconds(decision.retry_after))
            response = _refusal(scope, wait)
            response.headers["Retry-After"] = str(wait)
            for name, value in headers:
                response.headers[name.decode()] = value.decode()
            await response(scope, receive, send)
            return
        revoked = _REVOKE.match(scope["path"]) if scope["method"] == "DELETE" else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *headers]}
                if revoked and message["status"] == 204 and self._keys is not None:
                    self._keys.forget(int(revoked.group(1)))
            await send(message)

        await self.app(scope, receive, send_with_headers)
