"""Industry chains in the workbench: the park's chains, the form that creates one (links, stages, what feeds
what), a chain's page (the app's SVG map inline, per link its records, the ranked gaps with the outside
candidates that could fill them), officers' decisions, a placement run and the investment-attraction list as a
file. Every write goes through matcher/chains as the API's does, so the same rules and messages come back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlmodel import Session, select

from api.deps import StateDep
from api.ui import chain_form, forms
from api.ui.auth import CsrfDep, SignedDep, may
from api.ui.exports import download
from api.ui.i18n import translate
from api.ui.records import FormDep
from api.ui.render import language, page
from matcher.chains import picture, placement, render, store, view
from matcher.domain.chain_schemas import ChainCreate, ChainPublic, PlacementDecision
from matcher.domain.tables import Enterprise
from matcher.errors import MatcherError, ServiceUnavailable
from matcher.store.keys import Caller

router = APIRouter()
Format = Annotated[str, Query(pattern="^(xlsx|csv)$")]
GROUPS = ("enterprises", "prospects", "resources", "needs")
PER_LINK = 20
CANDIDATES = 10
DATALIST = 500  # the park's enterprises offered by name in the decision form


@router.get("/chains")
def chain_list(request: Request, state: StateDep, signed: SignedDep) -> Response:
    with Session(state.db) as session:
        rows = [view.chain_summary(session, c) for c in store.list_chains(session, caller=signed.caller)]
    ctx = {"rows": rows, "can_create": may(signed.caller, "create", "chain")}
    return page(request, "chains.html", ctx)


def _form_page(request: Request, f: chain_form.ChainForm, status: int = 200) -> Response:
    stages = ("", "upstream", "midstream", "downstream")
    return page(request, "chain_new.html", {"f": f, "stages": stages}, status=status)


@router.get("/chains/new")
def chain_new(request: Request, signed: SignedDep) -> Response:
    return _form_page(request, chain_form.ChainForm())


@router.post("/chains/new")
def chain_create(request: Request, state: StateDep, signed: CsrfDep, form: FormDep) -> Response:
    """Create the chain; a refusal (a cycle, a repeated key, a link naming no link) shows the form again with
    the message on the row at fault and everything typed kept. `more` adds a row and saves nothing."""
    f = chain_form.read(form)
    if form.get("more"):
        return _form_page(request, f)
    data, rows = chain_form.body(f)
    try:
        model = forms.validate(ChainCreate, data)
        with Session(state.db, expire_on_commit=False) as session:
            chain = store.create_chain(session, caller=signed.caller, data=model)  # type: ignore[arg-type]
            session.commit()
    except MatcherError as exc:
        if exc.status not in (409, 422):
            raise
        return _form_page(request, chain_form.problems(f, exc, rows), status=422)
    return RedirectResponse(f"/ui/chains/{chain.id}?saved=1", status_code=303)


def _chain(state: Any, caller: Caller, chain_id: int) -> tuple[ChainPublic, str | None]:
    """The chain as GET /v1/chains/{id} shows it, with its gaps' candidates once the engine is loaded."""
    with Session(state.db) as session:
        chain = view.chain_view(
            session,
            caller=caller,
            engine=state.matcher,
            chain_id=chain_id,
            per_link=PER_LINK,
            explain=False,
            candidates=CANDIDATES if state.matcher is not None else 0,
        )
    return chain, None if state.matcher is not None else "error.unavailable"


def _enterprises(state: Any, caller: Caller) -> list[tuple[int, str]]:
    with Session(state.db) as session:
        stmt = (
            select(Enterprise.id, Enterprise.name)
            .where(Enterprise.tenant_id == caller.tenant)
            .order_by(Enterprise.name)
            .limit(DATALIST)
        )
        return [(int(i), str(n)) for i, n in session.exec(stmt)]


def chain_page(
    request: Request,
    state: Any,
    caller: Caller,
    chain_id: int,
    *,
    decision: dict[str, str] | None = None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    chain, note = _chain(state, caller, chain_id)
    lang = language(request)
    ctx = {
        "c": chain,
        "map": Markup(render.chain_svg(chain)),  # noqa: S704 - the renderer escapes every text it draws
        "groups": GROUPS,
        "note": translate(lang, note) if note else None,
        "notice": notice,
        "error": error,
        "decision": decision or {"record_type": "enterprise", "decision": "pinned"},
        "enterprises": _enterprises(state, caller),
        "can_edit": may(caller, "update", "chain"),
        "name": lambda zh, en: zh if lang == "zh" or not en else en,
        "summary": lambda ex: (ex.get("summary_en") if lang == "en" else None) or ex.get("summary") or "",
        "O": lambda v: forms.option_label(str(v), lang),
    }
    return page(request, "chain.html", ctx, status=status)


@router.get("/chains/{chain_id}")
def chain_show(
    request: Request, state: StateDep, signed: SignedDep, chain_id: int, saved: int = 0, placed: int = 0
) -> Response:
    lang = language(request)
    notice = translate(lang, "rec.saved") if saved else None
    if placed:
        notice = translate(lang, "chain.placed")
    return chain_page(request, state, signed.caller, chain_id, notice=notice)


@router.post("/chains/{chain_id}/placement")
def chain_place(request: Request, state: StateDep, signed: CsrfDep, chain_id: int) -> Response:
    """Place the park's records (officers' decisions kept), as POST /v1/chains/{id}/placement."""
    with Session(state.db) as session:
        store.get_chain(session, caller=signed.caller, id=chain_id, action="update")  # 404 / 403 first
        if state.matcher is None:
            raise ServiceUnavailable("the matching indexes are still loading; retry shortly")
        placement.place_chain(session, caller=signed.caller, engine=state.matcher, chain_id=chain_id)
        session.commit()
    return RedirectResponse(f"/ui/chains/{chain_id}?placed=1", status_code=303)


@router.post("/chains/{chain_id}/placements")
def chain_decide(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, chain_id: int
) -> Response:
    """An officer's decision: a record pinned on a link or kept off it; a refusal shows the chain page with the
    message and the form as typed."""
    typed = {
        k: str(form.get(k) or "")[:500]
        for k in ("link_key", "record_type", "record_id", "decision", "reason")
    }
    data: dict[str, Any] = {k: v for k, v in typed.items() if v.strip()}
    if "record_id" in data:
        data["record_id"] = chain_form._number(data["record_id"])
    try:
        body = forms.validate(PlacementDecision, data)
        with Session(state.db) as session:
            store.decide(session, caller=signed.caller, chain_id=chain_id, data=body)  # type: ignore[arg-type]
            session.commit()
    except MatcherError as exc:
        if exc.status != 422:
            raise
        lang = language(request)
        error = f"{translate(lang, 'error.invalid')}{translate(lang, 'colon')}{exc.detail}"
        return chain_page(request, state, signed.caller, chain_id, decision=typed, error=error, status=422)
    return RedirectResponse(f"/ui/chains/{chain_id}?saved=1#links", status_code=303)


@router.post("/chains/{chain_id}/placements/{placement_id}/lift")
def chain_lift(
    request: Request, state: StateDep, signed: CsrfDep, chain_id: int, placement_id: int
) -> Response:
    with Session(state.db) as session:
        store.lift(session, caller=signed.caller, chain_id=chain_id, placement_id=placement_id)
        session.commit()
    return RedirectResponse(f"/ui/chains/{chain_id}?saved=1#links", status_code=303)


def _map_file(state: Any, caller: Caller, chain_id: int, fmt: str) -> Response:
    """The chain's picture as a file: the app's SVG, or the same drawn as a PNG (matcher/chains/picture.py)."""
    with Session(state.db) as session:
        chain = view.chain_view(session, caller=caller, engine=None, chain_id=chain_id, per_link=1)
    name = f"parkmatch-chain-{chain_id}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Content-Type-Options": "nosniff"}
    if fmt == "png":
        return Response(picture.chain_png(chain), media_type=picture.PNG_TYPE, headers=headers)
    return Response(render.chain_svg(chain), media_type="image/svg+xml", headers=headers)


@router.get("/chains/{chain_id}/map.svg")
def chain_map_svg(state: StateDep, signed: SignedDep, chain_id: int) -> Response:
    return _map_file(state, signed.caller, chain_id, "svg")


@router.get("/chains/{chain_id}/map.png")
def chain_map_png(state: StateDep, signed: SignedDep, chain_id: int) -> Response:
    return _map_file(state, signed.caller, chain_id, "png")


# ---------------------------------------------------------------------------------------------- the list as a file

HEADERS = {
    "zh": [
        "缺口排名", "环节编号", "环节", "环节（英文）", "园区企业", "需求", "资源", "缺口原因",
        "候选类型", "候选名称", "资源类型", "来源", "即将毕业", "匹配度", "命中词", "匹配理由", "编号",
    ],
    "en": [
        "gap rank", "link key", "link", "link (English)", "park enterprises", "needs", "resources", "why a gap",
        "candidate type", "candidate", "resource kind", "origin", "graduating", "score", "matched terms", "why",
        "id",
    ],
}  # fmt: skip


def gap_rows(chain: ChainPublic, lang: str) -> list[list[object]]:
    """One row per gap and candidate (a gap nobody could fill: one row without a candidate), best gap first."""
    rows: list[list[object]] = []
    for g in chain.gaps:
        head: list[object] = [g.rank, g.key, g.name_zh, g.name_en, g.enterprises, g.needs, g.resources]
        head.append(g.zh if lang == "zh" else g.en)
        cands = [*g.candidates.get("enterprises", []), *g.candidates.get("resources", [])]
        if not cands:
            rows.append(head + [""] * 9)
        for c in sorted(cands, key=lambda c: -c.score):
            ex = c.explanation or {}
            why = (ex.get("summary_en") if lang == "en" else None) or ex.get("summary") or ""
            rows.append(
                head
                + [
                    translate(lang, f"kind.{c.type}"),
                    c.name,
                    translate(lang, f"kind.{c.kind}") if c.kind else "",
                    translate(lang, f"chain.origin.{c.origin}"),
                    translate(lang, "chain.yes") if c.graduating else "",
                    round(c.score, 4),
                    "、".join(str(t) for t in ex.get("matched_terms", [])),
                    why,
                    c.id,
                ]
            )
    return rows


@router.get("/export/chains/{chain_id}/gaps")
def export_gaps(
    request: Request, state: StateDep, signed: SignedDep, chain_id: int, format: Format = "xlsx"
) -> Response:
    """The gaps and their candidates: the park's investment-attraction list (招商信息库)."""
    lang = language(request)
    chain, _ = _chain(state, signed.caller, chain_id)
    return download(gap_rows(chain, lang), lang, format, f"chain-{chain_id}-gaps", HEADERS[lang])
