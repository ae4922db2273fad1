"""Resources by kind, one resource's page with the enterprises and needs it fits (the reverse match, explained),
scenarios closing soon, and the forms to create and edit a resource with the details of its kind."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import Session, select

from api.deps import StateDep
from api.routes.match import demand_matches
from api.ui import forms
from api.ui.auth import CsrfDep, SignedDep, may
from api.ui.i18n import translate
from api.ui.records import FormDep, form_page, save
from api.ui.render import language, page
from api.ui.views import Card, deadline_of, demand_card
from matcher.domain.schemas import RESOURCE_KINDS, ResourceCreate, ResourceUpdate
from matcher.domain.tables import Resource
from matcher.domain.visibility import visible_clause
from matcher.errors import MatcherError, NotFound, ServiceUnavailable, invalid
from matcher.outcomes.feedback import record_feedback
from matcher.store import queries, records
from matcher.store.keys import Caller
from matcher.store.public import to_public_resource

router = APIRouter()
CLOSING_DAYS = 14
Kind = Annotated[str | None, Query(max_length=20)]


@router.get("/resources")
def resource_list(
    request: Request,
    state: StateDep,
    signed: SignedDep,
    kind: Kind = None,
    q: Annotated[str | None, Query(max_length=300)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    caller = signed.caller
    kind = kind if kind in RESOURCE_KINDS else None
    with Session(state.db) as session:
        rows, next_cursor = queries.list_resources(
            session, caller=caller, kind=kind, q=q, cursor=cursor, limit=50
        )
        total = queries.count_resources(session, caller=caller, kind=kind, q=q)
    ctx = {
        "rows": rows,
        "next_cursor": next_cursor,
        "total": total,
        "kind": kind,
        "kinds": RESOURCE_KINDS,
        "q": q or "",
        "can_create": may(caller, "create", kind or "result"),
    }
    return page(request, "resources.html", ctx)


def closing_soon(
    session: Session, caller: Caller, today: date, days: int = CLOSING_DAYS
) -> list[dict[str, Any]]:
    """Active scenarios the caller can see whose deadline (or validity) ends within `days`, soonest first."""
    stmt = select(Resource).where(
        visible_clause(Resource, caller.tenant), Resource.kind == "scenario", Resource.status == "active"
    )
    out = []
    for r in session.exec(stmt):
        end = deadline_of(r.kind, r.details, r.valid_until)
        try:
            end_day = date.fromisoformat(end) if end else None
        except ValueError:
            end_day = None
        if end_day is not None and today <= end_day <= today + timedelta(days=days):
            out.append({"r": r, "deadline": end_day, "days": (end_day - today).days})
    return sorted(out, key=lambda x: (x["deadline"], x["r"].id))


@router.get("/closing")
def closing(request: Request, state: StateDep, signed: SignedDep) -> Response:
    with Session(state.db) as session:
        rows = closing_soon(session, signed.caller, date.today())
    return page(request, "closing.html", {"rows": rows, "days": CLOSING_DAYS})


# ---------------------------------------------------------------------------------------------- forms


def _resource_form(
    request: Request, kind: str, filled: forms.Filled, resource_id: int | None, status: int = 200
) -> Response:
    lang = language(request)
    heading = translate(lang, "rec.new_resource") if resource_id is None else translate(lang, "rec.edit")
    heading += f" · {translate(lang, 'kind.' + kind)}"
    action = f"/ui/resources/new?kind={kind}" if resource_id is None else f"/ui/resources/{resource_id}/edit"
    cancel = f"/ui/resources?kind={kind}" if resource_id is None else f"/ui/resources/{resource_id}"
    return form_page(
        request,
        heading=heading,
        action=action,
        fields=forms.RESOURCE,
        detail_fields=forms.DETAILS[kind],
        kind=kind,
        filled=filled,
        cancel=cancel,
        status=status,
    )


def _kind(kind: str | None) -> str:
    if kind not in RESOURCE_KINDS:
        raise invalid("kind", f"expected one of {', '.join(RESOURCE_KINDS)}", "enum")
    return kind


@router.get("/resources/new")
def resource_new(request: Request, signed: SignedDep, kind: Kind = "result") -> Response:
    kind = _kind(kind)
    values = {"status": "active", "visibility": "public", "language": ""}
    return _resource_form(request, kind, forms.Filled(values=values), None)


class _Create:
    """ResourceCreate is a discriminated union: validated through a model with one field."""

    @staticmethod
    def model_validate(data: dict[str, Any]) -> Any:
        from pydantic import TypeAdapter

        return TypeAdapter(ResourceCreate).validate_python(data)


@router.post("/resources/new")
def resource_create(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, kind: Kind = "result"
) -> Response:
    kind = _kind(kind)
    fields = forms.RESOURCE + forms.DETAILS[kind]
    values = forms.read(form, fields)
    data = forms.body(values, fields, update=False) | {"kind": kind}
    if not data.get("language"):
        data.pop("language", None)
    return save(
        request,
        lambda s, body: records.create_resource(s, caller=signed.caller, data=body, hub=state.hub),
        state=state,
        model=_Create,  # type: ignore[arg-type]
        data=data,
        values=values,
        again=lambda filled, status: _resource_form(request, kind, filled, None, status),
        done=lambda row: f"/ui/resources/{row.id}?saved=1",
    )


def _own_resource(state: Any, caller: Caller, resource_id: int) -> Resource:
    with Session(state.db, expire_on_commit=False) as session:
        row = records.get_resource(session, caller=caller, id=resource_id)
    if row.tenant_id != caller.tenant:
        raise NotFound(f"no resource with id {resource_id}")
    return row


@router.get("/resources/{resource_id}/edit")
def resource_edit(request: Request, state: StateDep, signed: SignedDep, resource_id: int) -> Response:
    row = _own_resource(state, signed.caller, resource_id)
    fields = forms.RESOURCE + forms.DETAILS[row.kind]
    values = forms.from_row(row, fields, language(request))
    return _resource_form(request, row.kind, forms.Filled(values=values), resource_id)


@router.post("/resources/{resource_id}/edit")
def resource_update(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, resource_id: int
) -> Response:
    row = _own_resource(state, signed.caller, resource_id)
    fields = forms.RESOURCE + forms.DETAILS[row.kind]
    values = forms.read(form, fields)
    data = forms.body(values, fields, update=True)
    if not data.get("language"):
        data.pop("language", None)
    return save(
        request,
        lambda s, body: records.update_resource(
            s, caller=signed.caller, id=resource_id, data=body, hub=state.hub
        ),
        state=state,
        model=ResourceUpdate,
        data=data,
        values=values,
        again=lambda filled, status: _resource_form(request, row.kind, filled, resource_id, status),
        done=lambda r: f"/ui/resources/{r.id}?saved=1",
    )


# ---------------------------------------------------------------------------------------------- one resource


def _record_click(state: Any, caller: Caller, resource_id: int, request_id: str | None) -> None:
    """Opening a card from a served list is the 'clicked' feedback on that match (a learning signal)."""
    if not request_id or len(request_id) > 64 or not may(caller, "create", "feedback"):
        return
    with Session(state.db) as session:
        try:
            record_feedback(
                session, caller=caller, request_id=request_id, resource_id=resource_id, action="clicked"
            )
            session.commit()
        except MatcherError:
            session.rollback()  # not a served match of this tenant: nothing to record


def _display(f: forms.Field, value: Any, lang: str) -> str:
    if f.control == "multi":
        return "、".join(forms.option_label(str(v), lang) for v in value)
    if f.name == "park_affiliated":
        return forms.option_label("yes" if value else "no", lang)
    if f.control == "number" and isinstance(value, int | float) and value >= 1000:
        return f"{value:,.0f}"
    return str(forms.shown_value(value, f))


def fits(state: Any, caller: Caller, resource_id: int, lang: str, k: int = 20) -> tuple[list[Card], Any]:
    """The reverse match (enterprises and open needs the resource fits) as the API answers it, as cards."""
    if state.matcher is None:
        raise ServiceUnavailable("the matching indexes are still loading")
    outcome = state.matcher.reverse(resource_id, tenant=caller.tenant, k=k)
    matches = demand_matches(state, outcome, caller)
    return [demand_card(m, lang) for m in matches], outcome


@router.get("/resources/{resource_id}")
def resource_page(
    request: Request,
    state: StateDep,
    signed: SignedDep,
    resource_id: int,
    rid: Annotated[str | None, Query(max_length=64)] = None,
    saved: int = 0,
) -> Response:
    caller = signed.caller
    lang = language(request)
    with Session(state.db) as session:
        row = records.get_resource(session, caller=caller, id=resource_id)
        public = to_public_resource(row, caller)
        own = row.tenant_id == caller.tenant
    _record_click(state, caller, resource_id, rid)
    fit_note = None
    try:
        cards, _ = fits(state, caller, resource_id, lang)
    except ServiceUnavailable:  # the record is shown; what it fits follows once the indexes are loaded
        cards, fit_note = [], translate(lang, "error.unavailable")
    detail_fields = forms.DETAILS.get(public.kind, ())
    details = [
        (forms.label(f.name, lang), _display(f, public.details.get(f.name), lang))
        for f in detail_fields
        if public.details.get(f.name) not in (None, [], "")
    ]
    ctx = {
        "r": public,
        "own": own,
        "details": details,
        "cards": cards,
        "fit_note": fit_note,
        "saved": bool(saved),
        "deadline": deadline_of(public.kind, public.details, public.valid_until),
        "can_edit": own and may(caller, "update", public.kind),
        "O": lambda v: forms.option_label(str(v), lang),
    }
    return page(request, "resource.html", ctx)
