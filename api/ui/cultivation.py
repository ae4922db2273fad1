"""The cultivation pipeline in the workbench (摸底 -> 入库培育 -> 精准服务): the funnel by tier and by a chain's
links as SVG charts, the enterprises of each tier, each tier's policy (editable by those allowed), and one
enterprise's page: its tier with the history of moves (who, when, why), a move with a reason, and relay
incubation (marked as graduating, the parks' shared chains and links it fits, explained). Every write goes
through matcher/cultivation and matcher/relay as the API's does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from api.deps import StateDep
from api.ui import forms
from api.ui.auth import CsrfDep, SignedDep, may
from api.ui.charts import bar_chart, stacked_chart
from api.ui.i18n import translate
from api.ui.records import FormDep
from api.ui.render import language, page
from matcher.accounts.tables import UserAccount
from matcher.chains import store as chains
from matcher.cultivation import funnel, pipeline
from matcher.domain.cultivation_schemas import PolicyIn, TierMove
from matcher.domain.park_tables import Graduation
from matcher.domain.relay_schemas import GraduationCreate
from matcher.domain.tables import Enterprise
from matcher.errors import MatcherError, NotFound
from matcher.relay import graduation
from matcher.store import records
from matcher.store.keys import Caller
from matcher.store.tiers import TIER_LABELS, TIERS

router = APIRouter()
COLORS = {"prospect": "#9fb3c8", "incubating": "#0b69a3", "key_account": "#1b7a3a", "none": "#d9e2ec"}
LIST = 200  # enterprises listed per tier
KINDS = ("result", "scenario", "fund", "incubator")


def tier_name(tier: str | None, lang: str) -> str:
    zh, en = TIER_LABELS.get(tier or "", ("未入库", "outside"))
    return zh if lang == "zh" else en


def actors(session: Session, tenant: str, moves: list[Any]) -> dict[str, str]:
    """How the pages name who moved an enterprise: a person of the park by name (or email), else as recorded."""
    ids = {int(m.actor[5:]) for m in moves if m.actor.startswith("user:") and m.actor[5:].isdigit()}
    if not ids:
        return {}
    rows = session.exec(
        select(UserAccount.id, UserAccount.name, UserAccount.email).where(
            col(UserAccount.id).in_(ids), UserAccount.tenant_id == tenant
        )
    )
    return {f"user:{i}": name or email for i, name, email in rows}


def _chain_id(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and len(raw) < 10 else None


@router.get("/cultivation")
def cultivation(
    request: Request,
    state: StateDep,
    signed: SignedDep,
    chain_id: Annotated[str | None, Query(max_length=12)] = None,
    tier: Annotated[str | None, Query(max_length=20)] = None,
    saved: int = 0,
) -> Response:
    notice = translate(language(request), "rec.saved") if saved else None
    shown = tier if tier in TIERS else "prospect"
    return cultivation_page(request, state, signed.caller, _chain_id(chain_id), shown, notice=notice)


def cultivation_page(
    request: Request,
    state: Any,
    caller: Caller,
    chain_id: int | None,
    tier: str,
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    lang = language(request)
    with Session(state.db) as session:
        f = funnel.funnel(session, caller=caller, chain_id=chain_id)
        chain_rows = chains.list_chains(session, caller=caller)
        policies = pipeline.policies(session, caller=caller)
        moves = pipeline.history(session, caller=caller, limit=20)
        listed = list(
            session.exec(
                select(Enterprise)
                .where(Enterprise.tenant_id == caller.tenant, Enterprise.tier == tier)
                .order_by(col(Enterprise.updated_at).desc())
                .limit(LIST)
            )
        )
        names = dict(
            session.exec(
                select(Enterprise.id, Enterprise.name).where(
                    col(Enterprise.id).in_([m.enterprise_id for m in moves]),
                    Enterprise.tenant_id == caller.tenant,
                )
            ).all()
        )
        follow = funnel.follow_ups(session, caller=caller, limit=20)
        who = actors(session, caller.tenant, moves)
    order = [*TIERS, "none"]
    tiers_chart = bar_chart(
        translate(lang, "cult.funnel"),
        [(tier_name(t if t != "none" else None, lang), f.tiers.get(t, 0)) for t in order],
        color="#0b69a3",
    )
    series = [(t, tier_name(t if t != "none" else None, lang), COLORS[t]) for t in order]
    link_chart = (
        stacked_chart(
            translate(lang, "cult.by_chain"),
            [
                ((x["name_zh"] if lang == "zh" or not x["name_en"] else x["name_en"]), x["tiers"])
                for x in f.links
            ],
            series,
        )
        if chain_id is not None
        else None
    )
    ctx = {
        "f": f,
        "order": order,
        "tiers": TIERS,
        "tier": tier,
        "tier_name": lambda t: tier_name(t, lang),
        "tiers_chart": tiers_chart,
        "link_chart": link_chart,
        "chains": chain_rows,
        "chain_id": chain_id,
        "policies": policies,
        "moves": moves,
        "names": names,
        "who": lambda actor: who.get(actor, actor),
        "listed": listed,
        "follow": follow,
        "kinds": KINDS,
        "error": error,
        "notice": notice,
        "can_edit": may(caller, "update", "cultivation"),
        "O": lambda v: forms.option_label(str(v), lang),
    }
    return page(request, "cultivation.html", ctx, status=status)


@router.post("/cultivation/policies/{tier}")
def policy_set(request: Request, state: StateDep, signed: CsrfDep, form: FormDep, tier: str) -> Response:
    """A tier's policy as PUT /v1/cultivation/policies/{tier} sets it; a refusal shows the page with the
    message."""
    data: dict[str, Any] = {
        "digest_frequency": str(form.get("digest_frequency") or ""),
        "digest_kinds": [k for k in form.getlist("digest_kinds") if isinstance(k, str)][:10],
        "follow_up": form.get("follow_up") == "1",
        "apply_now": form.get("apply_now") == "1",
    }
    for name in ("follow_up_min_score", "follow_up_days"):
        raw = str(form.get(name) or "").strip()
        if raw:
            value = forms._as_number(raw)
            data[name] = float(value) if name == "follow_up_min_score" and isinstance(value, int) else value
    try:
        body = forms.validate(PolicyIn, data)
        with Session(state.db) as session:
            pipeline.set_policy(session, caller=signed.caller, tier=tier, data=body)  # type: ignore[arg-type]
            session.commit()
    except MatcherError as exc:
        if exc.status != 422:
            raise
        lang = language(request)
        error = f"{translate(lang, 'error.invalid')}{translate(lang, 'colon')}{exc.detail}"
        shown = tier if tier in TIERS else "prospect"
        return cultivation_page(request, state, signed.caller, None, shown, error=error, status=422)
    return RedirectResponse(f"/ui/cultivation?tier={tier}&saved=1#policies", status_code=303)


# ---------------------------------------------------------------------------------------------- one enterprise


def _own(session: Session, caller: Caller, enterprise_id: int) -> Enterprise:
    """The park's own enterprise; another tenant's reads as not found (its tier is that park's business)."""
    row = records.get_enterprise(session, caller=caller, id=enterprise_id)
    if row.tenant_id != caller.tenant:
        raise NotFound(f"no enterprise with id {enterprise_id}")
    return row


def enterprise_page(
    request: Request,
    state: Any,
    caller: Caller,
    enterprise_id: int,
    *,
    error: str | None = None,
    notice: str | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    lang = language(request)
    with Session(state.db) as session:
        ent = _own(session, caller, enterprise_id)
        history = pipeline.history(session, caller=caller, enterprise_id=enterprise_id, limit=200)
        mark = session.exec(select(Graduation).where(Graduation.enterprise_id == ent.id)).first()
        relay, relay_note = None, None
        if state.matcher is None:
            relay_note = translate(lang, "error.unavailable")
        elif may(caller, "read", "graduation"):
            relay = graduation.relay(
                session, caller=caller, engine=state.matcher, enterprise_id=enterprise_id
            )
        who = actors(session, caller.tenant, history)
        ctx = {
            "e": ent,
            "history": history,
            "who": lambda actor: who.get(actor, actor),
            "mark": mark,
            "relay": relay,
            "relay_note": relay_note,
            "tiers": TIERS,
            "tier_name": lambda t: tier_name(t, lang),
            "error": error,
            "notice": notice,
            "typed": typed or {},
            "can_move": may(caller, "update", "cultivation"),
            "can_mark": may(caller, "create", "graduation"),
            "summary": lambda ex: (ex.get("summary_en") if lang == "en" else None) or ex.get("summary") or "",
        }
        return page(request, "cultivation_enterprise.html", ctx, status=status)


@router.get("/cultivation/enterprises/{enterprise_id}")
def enterprise_show(
    request: Request, state: StateDep, signed: SignedDep, enterprise_id: int, saved: int = 0
) -> Response:
    notice = translate(language(request), "rec.saved") if saved else None
    return enterprise_page(request, state, signed.caller, enterprise_id, notice=notice)


def _refused(
    request: Request, state: Any, caller: Caller, enterprise_id: int, exc: MatcherError, typed: dict[str, str]
) -> Response:
    lang = language(request)
    error = f"{translate(lang, 'error.invalid')}{translate(lang, 'colon')}{exc.detail}"
    return enterprise_page(request, state, caller, enterprise_id, error=error, typed=typed, status=exc.status)


@router.post("/cultivation/enterprises/{enterprise_id}/tier")
def tier_move(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, enterprise_id: int
) -> Response:
    """Move the enterprise to a tier (or out of the pipeline) with a reason; recorded with who, when and why."""
    typed = {k: str(form.get(k) or "")[:2000] for k in ("tier", "reason")}
    data: dict[str, Any] = {"tier": typed["tier"] or None}
    if typed["reason"].strip():
        data["reason"] = typed["reason"].strip()
    try:
        body = forms.validate(TierMove, data)
        with Session(state.db) as session:
            _own(session, signed.caller, enterprise_id)
            pipeline.move(
                session, caller=signed.caller, enterprise_id=enterprise_id, data=body, hub=state.hub
            )  # type: ignore[arg-type]
            session.commit()
    except MatcherError as exc:
        if exc.status != 422:
            raise
        return _refused(request, state, signed.caller, enterprise_id, exc, typed)
    return RedirectResponse(f"/ui/cultivation/enterprises/{enterprise_id}?saved=1", status_code=303)


@router.post("/cultivation/enterprises/{enterprise_id}/graduation")
def graduation_mark(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, enterprise_id: int
) -> Response:
    """Mark the enterprise as graduating (relay incubation): parks whose shared chains it fits see it."""
    typed = {k: str(form.get(k) or "")[:2000] for k in ("note", "expected")}
    data = {k: v.strip() for k, v in typed.items() if v.strip()}
    try:
        body = forms.validate(GraduationCreate, data)
        with Session(state.db) as session:
            _own(session, signed.caller, enterprise_id)
            graduation.mark(session, caller=signed.caller, enterprise_id=enterprise_id, data=body)  # type: ignore[arg-type]
            session.commit()
    except MatcherError as exc:
        if exc.status not in (409, 422):
            raise
        return _refused(request, state, signed.caller, enterprise_id, exc, typed)
    return RedirectResponse(f"/ui/cultivation/enterprises/{enterprise_id}?saved=1#relay", status_code=303)


@router.post("/cultivation/enterprises/{enterprise_id}/graduation/remove")
def graduation_unmark(request: Request, state: StateDep, signed: CsrfDep, enterprise_id: int) -> Response:
    with Session(state.db) as session:
        _own(session, signed.caller, enterprise_id)
        graduation.unmark(session, caller=signed.caller, enterprise_id=enterprise_id)
        session.commit()
    return RedirectResponse(f"/ui/cultivation/enterprises/{enterprise_id}?saved=1#relay", status_code=303)
