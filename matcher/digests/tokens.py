"""Signed tokens of digest links under an HMAC-SHA256 of the service secret: unsubscribe (enterprise id and
expiry) and resource pages (enterprise id, resource id and expiry). Each kind is signed under its own label, so
one kind never passes for the other."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from matcher.errors import MatcherError

DEFAULT_TTL_S = 180 * 86400  # a link in an old email keeps working for half a year


class InvalidToken(MatcherError):
    status = 400
    title = "Invalid token"


class ExpiredToken(InvalidToken):
    """A genuine token past its expiry (a page can say so rather than call it invalid)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str, secret: str, label: bytes = b"unsubscribe:") -> str:
    mac = hmac.new(secret.encode("utf-8"), label + payload.encode("ascii"), hashlib.sha256)
    return _b64(mac.digest())


def make_unsubscribe_token(
    enterprise_id: int, secret: str, *, ttl_s: int = DEFAULT_TTL_S, now: float | None = None
) -> str:
    expires = int((time.time() if now is None else now) + ttl_s)
    payload = _b64(f"1.{enterprise_id}.{expires}".encode("ascii"))
    return f"{payload}.{_sign(payload, secret)}"


def verify_unsubscribe_token(token: str, secret: str, *, now: float | None = None) -> int:
    """The enterprise id the token was issued for; InvalidToken when forged, malformed or expired."""
    if not isinstance(token, str) or not token.isascii():
        raise InvalidToken("the unsubscribe link is malformed")
    try:
        payload, sig = token.split(".", 1)
    except ValueError:
        raise InvalidToken("the unsubscribe link is malformed") from None
    if not hmac.compare_digest(sig, _sign(payload, secret)):
        raise InvalidToken("the unsubscribe link is not valid")
    try:
        version, eid, expires = _unb64(payload).decode("ascii").split(".")
        enterprise_id, expiry = int(eid), int(expires)
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("the unsubscribe link is malformed") from None
    if version != "1":
        raise InvalidToken("the unsubscribe link is of an unknown version")
    if (time.time() if now is None else now) > expiry:
        raise ExpiredToken("the unsubscribe link has expired; use the link in a newer email")
    return enterprise_id


VIEW_LABEL = b"view:"


def make_view_token(
    enterprise_id: int, resource_id: int, secret: str, *, ttl_s: int, now: float | None = None
) -> str:
    """The token of a digest item's link: which enterprise may read which resource, until when."""
    expires = int((time.time() if now is None else now) + ttl_s)
    payload = _b64(f"1.{enterprise_id}.{resource_id}.{expires}".encode("ascii"))
    return f"{payload}.{_sign(payload, secret, VIEW_LABEL)}"


def verify_view_token(token: str, secret: str, *, now: float | None = None) -> tuple[int, int]:
    """(enterprise id, resource id); InvalidToken when forged or malformed, ExpiredToken when expired."""
    if not isinstance(token, str) or not token.isascii() or len(token) > 300:
        raise InvalidToken("the link is malformed")
    payload, _, sig = token.partition(".")
    if not sig or not hmac.compare_digest(sig, _sign(payload, secret, VIEW_LABEL)):
        raise InvalidToken("the link is not valid")
    try:
        version, eid, rid, expires = _unb64(payload).decode("ascii").split(".")
        ids, expiry = (int(eid), int(rid)), int(expires)
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("the link is malformed") from None
    if version != "1":
        raise InvalidToken("the link is of an unknown version")
    if (time.time() if now is None else now) > expiry:
        raise ExpiredToken("the link has expired")
    return ids
