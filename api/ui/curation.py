"""Curation from a result card: relevant / not relevant (with a reason) / contacted / deal are the feedback the
API records (matcher/outcomes/feedback.py, on the served match); pin, block and note are the enterprise's
curation (matcher/store/curation.py), which its matches and digests apply. Pinning from a list also records
the match as relevant, blocking as not relevant: the same signal for learning."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.deps import StateDep
from api.ui.auth import CsrfDep
from api.ui.i18n import translate
from api.ui.render import PAGE_HEADERS, environment, language, page
from api.ui.views import Card
from matcher.errors import MatcherError, ValidationFailed
from matcher.outcomes.feedback import REASONS, record_feedback
from matcher.store import curation

router = APIRouter()
Text = Annotated[str, Form(max_length=200)]


def _fragment(request: Request, html: str, status: int = 200) -> Response:
    """For htmx: the fragment alone; for a plain form post: a page with the message and a way back."""
    if request.headers.get("hx-request") == "true":
        return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    back = request.headers.get("referer") or "/ui/search"
    back = back if back.startswith(str(request.base_url)) else "/ui/search"
    return page(request, "message.html", {"html": html, "back": back}, status=status)


def _number(text: str, field: str) -> float | None:
    text = (text or "").strip().replace(",", "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValidationFailed(f"{field}: not a number") from None
    if not 0 <= value <= 1e13:
        raise ValidationFailed(f"{field}: must be between 0 and 10,000,000,000,000")
    return value


def _reason_label(code: str | None, lang: str) -> str:
    for r in REASONS:
        if r.code == code:
            return r.zh if lang == "zh" else r.en
    return ""


@router.post("/feedback")
def feedback(
    request: Request,
    state: StateDep,
    signed: CsrfDep,
    request_id: Annotated[str, Form(min_length=1, max_length=64)],
    resource_id: Annotated[int, Form()],
    action: Annotated[str, Form(max_length=20)],
    reason: Text = "",
    amount: Text = "",
    need_id: Text = "",
) -> Response:
    """One feedback event on a served match, exactly as POST /v1/feedback records it."""
    lang = language(request)
    esc = environment().filters["e"]
    try:
        with Session(state.db) as session:
            record_feedback(
                session,
                caller=signed.caller,
                request_id=request_id,
                resource_id=resource_id,
                action=action,
                reason=(reason or None) if action == "rejected" else None,
                amount=_number(amount, "amount") if action == "deal" else None,
                need_id=int(need_id) if need_id.isdigit() else None,
            )
            session.commit()
    except MatcherError as exc:
        if exc.status in (403, 404):
            raise
        return _fragment(request, f'<span class="error" role="alert">{esc(exc.detail)}</span>', 422)
    words = translate(lang, f"fb.action.{action}")
    if action == "rejected" and reason:
        words += f"（{_reason_label(reason, lang)}）"
    text = translate(lang, "fb.recorded", action=words)
    return _fragment(request, f'<span class="recorded">✓ {esc(text)}</span>')


@router.post("/curation")
def curate(
    request: Request,
    state: StateDep,
    signed: CsrfDep,
    enterprise_id: Annotated[int, Form()],
    resource_id: Annotated[int, Form()],
    state_: Annotated[str | None, Form(alias="state", max_length=10)] = None,
    note: Annotated[str | None, Form(max_length=4000)] = None,
    request_id: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Pin, block, clear or annotate one resource for one enterprise; answers the card's curation controls."""
    caller = signed.caller
    with Session(state.db) as session:
        row = curation.curate(
            session,
            caller=caller,
            enterprise_id=enterprise_id,
            resource_id=resource_id,
            state=None if state_ in (None, "", "none") else state_,
            set_state=state_ is not None,
            note=note,
            commit=False,
        )
        if request_id and state_ in ("pin", "block"):
            # the same signal an officer's relevant / not relevant gives, on the served match
            try:  # record_feedback checks everything before it adds its row
                record_feedback(
                    session,
                    caller=caller,
                    request_id=request_id,
                    resource_id=resource_id,
                    action="accepted" if state_ == "pin" else "rejected",
                    reason="not_relevant" if state_ == "block" else None,
                )
            except MatcherError:
                pass  # not a served match of this tenant: the curation alone is kept
        session.commit()
        card = Card(0, 0.0, resource_id, "", "", "", None, None, [], None, [], [], "", "")
        card.pinned, card.blocked, card.note = row.state == "pin", row.state == "block", row.note
    ctx = {
        "c": card,
        "subject": {"enterprise_id": enterprise_id},
        "rid": request_id or None,
        "saved": True,
        "csrf": signed.csrf,
        "t": lambda key, **v: translate(language(request), key, **v),
    }
    html = environment().get_template("_curation.html").render(ctx)
    return _fragment(request, html)
