"""Rendering workbench pages: one Jinja environment (autoescaped), the language, and the headers every page gets."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.ui.i18n import LANGUAGES, translate
from api.ui.views import tag_labels

HERE = Path(__file__).parent
LANG_COOKIE = "pm_lang"

# nothing but this app's own files: no CDN, no inline script; inline styles are not used either
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # links to resource pages carry a signed token: never send it on to another site
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(enabled_extensions=("html",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: "—" if v is None else f"{float(v):.0%}"
    env.filters["num"] = lambda v: "—" if v is None else f"{float(v):,.0f}"
    return env


def language(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "zh")
    return lang if lang in LANGUAGES else "zh"


def page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render `template` with the language, its words (`t`), the signed-in person (if any) and their CSRF token."""
    lang = language(request)
    signed = getattr(request.state, "signed", None)
    ctx: dict[str, Any] = {
        "tags": lambda tags: tag_labels(tags, lang),
        "request": request,
        "lang": lang,
        "t": lambda key, **v: translate(lang, key, **v),
        "signed": signed,
        "csrf": signed.csrf if signed is not None else getattr(request.state, "pre_csrf", ""),
        "path": request.url.path,
        "fragment": request.headers.get("hx-request") == "true",
        "messages": [],
    }
    ctx.update(context or {})
    html = environment().get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
