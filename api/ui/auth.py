"""Who is signed in to the workbench, CSRF checks on every form, and the sign-in / sign-out pages.

The session cookie is HttpOnly, SameSite=Lax and (behind https) Secure; each session has its own CSRF token
that every form carries (field `csrf`, or the X-CSRF-Token header htmx sends). The sign-in form, made before
there is a session, carries a token that must equal a cookie of its own (double submit)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from api.deps import StateDep
from api.ui.i18n import translate
from api.ui.render import language, page
from matcher.accounts import sessions, users
from matcher.accounts.sessions import Signed
from matcher.domain.permissions import authorize
from matcher.store.keys import Caller

SESSION_COOKIE = "pm_session"
PRE_CSRF_COOKIE = "pm_csrf"
router = APIRouter()


class SignInRequired(Exception):
    """Raised by `signed_in`: the handler sends the browser to the sign-in page (why: none or expired)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class CsrfFailed(Exception):
    """A form without the token of its session: answered with a page that says so (403)."""


def _secure(request: Request) -> bool:
    return request.app.state.app_state.settings.public_url.startswith("https://")


def signed_in(request: Request, state: StateDep) -> Signed:
    """The signed-in person (also put on request.state for the templates); SignInRequired otherwise."""
    with Session(state.db, expire_on_commit=False) as db:
        signed, why = sessions.resolve(db, state.settings, request.cookies.get(SESSION_COOKIE))
    if signed is None:
        raise SignInRequired(why or "none")
    request.state.signed = signed
    return signed


SignedDep = Annotated[Signed, Depends(signed_in)]


def caller_of(signed: SignedDep) -> Caller:
    return signed.caller


CallerDep = Annotated[Caller, Depends(caller_of)]


def may(caller: Caller, action: str, record_type: str) -> bool:
    """Whether the matrix lets the caller's role do this in its own tenant (to show or hide a control)."""
    try:
        authorize(caller, action, record_type, owner_tenant=caller.tenant)
    except Exception:  # noqa: BLE001 - Forbidden: the control is not shown
        return False
    return True


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


async def csrf_checked(request: Request, signed: SignedDep) -> Signed:
    """For every state-changing request of a signed-in person: the session's CSRF token must come with it."""
    sent = request.headers.get("x-csrf-token")
    if not sent:
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    if not _same(sent, signed.csrf):
        raise CsrfFailed()
    return signed


CsrfDep = Annotated[Signed, Depends(csrf_checked)]


def pre_csrf(request: Request) -> str:
    """The double-submit token of forms shown to people who are not signed in (sign-in, enterprise pages)."""
    token = request.cookies.get(PRE_CSRF_COOKIE)
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(24)
    request.state.pre_csrf = token
    return token


def set_pre_csrf(request: Request, response: Response) -> Response:
    token = getattr(request.state, "pre_csrf", None)
    if token and request.cookies.get(PRE_CSRF_COOKIE) != token:
        response.set_cookie(
            PRE_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request), path="/"
        )
    return response


def check_pre_csrf(request: Request, sent: str | None) -> None:
    if not _same(sent, request.cookies.get(PRE_CSRF_COOKIE)):
        raise CsrfFailed()


def safe_next(target: str | None) -> str:
    """Only a path of this workbench: never another site (an open redirect)."""
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/search"


def sign_in_redirect(request: Request, why: str) -> Response:
    """A page asked for without a live session: to the sign-in page and back. A form posted after the session
    ended is not lost: the page (htmx) or the browser's back button still holds what was typed, and the answer
    says to sign in in another tab and submit again."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = request.headers.get("hx-current-url") or request.headers.get("referer") or "/ui/search"
        target = target.split(request.url.netloc, 1)[-1] if "://" in target else target
    url = f"/ui/login?next={quote(safe_next(target))}" + ("&expired=1" if why == "expired" else "")
    if request.method == "GET":
        if request.headers.get("hx-request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)
    html = page(request, "_session_ended.html", {"login_url": url, "why": why}, status=401)
    if request.headers.get("hx-request") == "true":  # shown above the page, the form left as it is
        html.headers.update(
            {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML", "HX-Reselect": "#session-ended"}
        )
    return html


# ---------------------------------------------------------------------------------------------- pages


@router.get("/login")
def login_page(request: Request, next: str | None = None, expired: int = 0, out: int = 0) -> Response:
    pre_csrf(request)
    lang = language(request)
    notice = None
    if expired:
        notice = translate(lang, "signin.expired")
    elif out:
        notice = translate(lang, "signin.out")
    ctx = {"next": safe_next(next), "notice": notice, "error": None, "email": "", "tenant": ""}
    return set_pre_csrf(request, page(request, "login.html", ctx))


@router.post("/login")
def login(
    request: Request,
    state: StateDep,
    email: Annotated[str, Form(max_length=300)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    tenant: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_pre_csrf(request, csrf)
    pre_csrf(request)
    with Session(state.db, expire_on_commit=False) as db:
        result = users.authenticate(db, state.settings, email=email, password=password, tenant=tenant)
        if result.user is not None:
            token, _ = sessions.open_session(db, state.settings, result.user)
            response = RedirectResponse(safe_next(next), status_code=303)
            response.set_cookie(
                SESSION_COOKIE,
                token,
                httponly=True,
                samesite="lax",
                secure=_secure(request),
                path="/",
                max_age=int(state.settings.session_max_hours * 3600),
            )
            return response
    lang = language(request)
    until = f"{result.locked_until:%Y-%m-%d %H:%M}" if result.locked_until else ""
    error = translate(lang, f"signin.{result.reason}", until=until)
    ctx = {"next": safe_next(next), "notice": None, "error": error, "email": email[:300], "tenant": tenant}
    status = 429 if result.reason == "locked" else 401
    return set_pre_csrf(request, page(request, "login.html", ctx, status=status))


@router.post("/logout")
def logout(request: Request, state: StateDep, signed: CsrfDep) -> Response:
    with Session(state.db) as db:
        sessions.end_session(db, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/ui/login?out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang")
def switch_language(request: Request, to: str = "zh", next: str | None = None) -> Response:
    """The language toggle: a preference cookie, then back to the page."""
    target = (
        next
        if next and (next.startswith("/ui") or next.startswith("/p/")) and "//" not in next
        else "/ui/search"
    )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        "pm_lang", "en" if to == "en" else "zh", samesite="lax", path="/", max_age=365 * 86400
    )
    return response
