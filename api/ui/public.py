"""Pages for the enterprises a digest is sent to, opened without a key: the signed, expiring page of a matched
resource (its public fields only) with one-click "interested" / "not relevant", and the unsubscribe page. The
link's token is the credential; a tampered or expired one gets a page that says so."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import StateDep
from api.ui import forms
from api.ui.auth import check_pre_csrf, pre_csrf, set_pre_csrf
from api.ui.i18n import LANGUAGES, translate
from api.ui.render import LANG_COOKIE, page
from api.ui.views import deadline_of
from matcher.digests.tokens import ExpiredToken, InvalidToken, verify_view_token
from matcher.domain.tables import Enterprise, Resource
from matcher.domain.visibility import visible_to
from matcher.errors import MatcherError
from matcher.outcomes.feedback import record_link_feedback
from matcher.store import subscriptions

router = APIRouter()
Token = Annotated[str, Query(max_length=512)]
# the details an enterprise is shown: what the offer is, never prices, contacts or internal ids
PUBLIC_DETAILS = {
    "result": ("trl", "ip_status", "transfer_modes"),
    "scenario": ("location", "deadline", "validation_window", "eligibility"),
    "fund": ("stages", "sectors"),
    "incubator": ("facilities", "tracks", "admission", "location"),
}
ACTIONS = {"interested": ("accepted", None), "not_relevant": ("rejected", "not_relevant")}


def _lang(request: Request, enterprise: Enterprise | None = None) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return "en" if enterprise is not None and (enterprise.language or "").startswith("en") else "zh"


def _page(request: Request, template: str, lang: str, ctx: dict[str, Any], status: int = 200) -> Response:
    words = {"lang": lang, "t": lambda key, **v: translate(lang, key, **v)}
    return set_pre_csrf(request, page(request, template, {**ctx, **words}, status=status))


def _problem(request: Request, exc: Exception, lang: str) -> Response:
    if isinstance(exc, ExpiredToken):
        key, status = "pub.expired", 410
    elif isinstance(exc, InvalidToken):
        key, status = "pub.invalid", 400
    else:
        key, status = "pub.gone", 404
    ctx = {"title": translate(lang, key), "detail": translate(lang, f"{key}_detail")}
    return _page(request, "public/error.html", lang, ctx, status)


def _open(state: Any, token: str) -> tuple[Enterprise, Resource]:
    """The enterprise and resource the token names, if the resource is still offered to that enterprise."""
    enterprise_id, resource_id = verify_view_token(token, state.settings.resolved_secret())
    with Session(state.db, expire_on_commit=False) as session:
        ent = session.get(Enterprise, enterprise_id) if 0 < enterprise_id < 2**31 else None
        res = session.get(Resource, resource_id) if 0 < resource_id < 2**31 else None
    if ent is None or res is None or not visible_to(res, ent.tenant_id) or res.status != "active":
        raise LookupError("gone")
    return ent, res


def _shown(res: Resource, lang: str) -> list[tuple[str, str]]:
    out = []
    fields = {f.name: f for f in forms.DETAILS.get(res.kind, ())}
    for name in PUBLIC_DETAILS.get(res.kind, ()):
        value = (res.details or {}).get(name)
        if value in (None, "", []):
            continue
        if fields[name].control == "multi":
            text = "、".join(forms.option_label(str(v), lang) for v in value)
        else:
            text = str(forms.shown_value(value, fields[name]))
        out.append((forms.label(name, lang), text))
    return out


@router.get("/r/{token}")
def resource_page(request: Request, state: StateDep, token: str) -> Response:
    pre_csrf(request)
    try:
        ent, res = _open(state, token)
    except (InvalidToken, LookupError) as exc:
        return _problem(request, exc, _lang(request))
    lang = _lang(request, ent)
    ctx = {
        "r": res,
        "details": _shown(res, lang),
        "deadline": deadline_of(res.kind, res.details, res.valid_until),
        "token": token,
        "done": None,
    }
    return _page(request, "public/resource.html", lang, ctx)


@router.post("/r/{token}")
def resource_feedback(
    request: Request,
    state: StateDep,
    token: str,
    action: Annotated[str, Form(max_length=20)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_pre_csrf(request, csrf)
    pre_csrf(request)
    try:
        ent, res = _open(state, token)
    except (InvalidToken, LookupError) as exc:
        return _problem(request, exc, _lang(request))
    lang = _lang(request, ent)
    if action not in ACTIONS:
        return _problem(request, InvalidToken("unknown action"), lang)
    fb_action, reason = ACTIONS[action]
    with Session(state.db) as session:
        record_link_feedback(
            session,
            tenant=ent.tenant_id,
            enterprise_id=ent.id,
            resource_id=res.id,
            action=fb_action,
            reason=reason,
        )
    ctx = {
        "r": res,
        "details": _shown(res, lang),
        "deadline": deadline_of(res.kind, res.details, res.valid_until),
        "token": token,
        "done": action,
    }
    return _page(request, "public/resource.html", lang, ctx)


@router.get("/unsubscribe")
def unsubscribe_page(request: Request, state: StateDep, token: Token) -> Response:
    pre_csrf(request)
    try:
        with Session(state.db) as session:
            ent = subscriptions.enterprise_for_token(
                session, token=token, secret=state.settings.resolved_secret()
            )
            lang = _lang(request, ent)
    except MatcherError as exc:  # forged, expired, or the subscription is gone
        return _problem(request, exc, _lang(request))
    return _page(request, "public/unsubscribe.html", lang, {"token": token, "done": False})


@router.post("/unsubscribe")
def unsubscribe(
    request: Request,
    state: StateDep,
    token: Annotated[str, Form(max_length=512)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_pre_csrf(request, csrf)
    try:
        with Session(state.db) as session:
            ent = subscriptions.unsubscribe(
                session, token=token, secret=state.settings.resolved_secret(), hub=state.hub
            )
            lang = _lang(request, ent)
    except MatcherError as exc:
        return _problem(request, exc, _lang(request))
    return _page(request, "public/unsubscribe.html", lang, {"token": token, "done": True})
