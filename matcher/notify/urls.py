"""Webhook URL checks: http(s) only, and no private, loopback or link-local targets unless allowed."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from matcher.errors import ValidationFailed, invalid


def _refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def validate_webhook_url(url: str, *, allow_private: bool) -> str:
    """The URL unchanged when acceptable; ValidationFailed with a reason otherwise.

    Host names are resolved and every address checked, so a public name pointing inside is refused too; the
    check runs again at each delivery against re-pointed names."""

    def fail(reason: str) -> ValidationFailed:
        return invalid("url", reason)

    if not isinstance(url, str) or len(url) > 2000:
        raise fail("must be a string of at most 2000 characters")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise fail(f"scheme {parts.scheme or '(none)'!r} is not allowed; use http or https")
    if not parts.hostname:
        raise fail("has no host")
    if parts.username or parts.password:
        raise fail("must not carry credentials")
    if allow_private:
        return url
    host = parts.hostname
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
        except (socket.gaierror, UnicodeError):
            raise fail(f"host {host!r} does not resolve") from None
        addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    bad = sorted(str(a) for a in addresses if _refused(a))
    if bad:
        raise fail(f"host {host!r} is a private or loopback address ({', '.join(bad)}); not allowed here")
    return url
