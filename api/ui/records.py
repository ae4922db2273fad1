"""Records: enterprises with their needs, and forms to create and edit both, validated by the API's own models
and written by the store under the same rules as an API call (so the same messages come back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlmodel import Session
from starlette.datastructures import FormData

from api.deps import StateDep
from api.ui import forms
from api.ui.auth import CsrfDep, SignedDep, may
from api.ui.render import language, page
from matcher.domain.schemas import EnterpriseCreate, EnterpriseUpdate, NeedCreate, NeedUpdate
from matcher.domain.tables import Resource
from matcher.errors import MatcherError, NotFound
from matcher.store import curation, queries, records
from matcher.store.keys import Caller
from matcher.store.public import to_public_enterprise, to_public_need

router = APIRouter()
Cursor = Annotated[str | None, Query(max_length=200)]
Search = Annotated[str | None, Query(max_length=300)]


async def posted(request: Request) -> FormData:
    return await request.form()


FormDep = Annotated[FormData, Depends(posted)]


def form_page(
    request: Request,
    *,
    heading: str,
    action: str,
    fields: tuple[forms.Field, ...],
    filled: forms.Filled,
    cancel: str,
    hidden: tuple[tuple[str, Any], ...] = (),
    kind: str | None = None,
    detail_fields: tuple[forms.Field, ...] = (),
    status: int = 200,
) -> Response:
    lang = language(request)
    ctx = {
        "heading": heading,
        "action": action,
        "main_fields": fields,
        "detail_fields": detail_fields,
        "filled": filled,
        "cancel": cancel,
        "hidden": hidden,
        "kind": kind,
        "L": lambda name: forms.label(name, lang),
        "O": lambda value: forms.option_label(value, lang),
    }
    return page(request, "form.html", ctx, status=status)


def save(
    request: Request,
    write: Callable[[Session], Any],
    *,
    state: Any,
    model: type[BaseModel],
    data: dict[str, Any],
    values: dict[str, Any],
    again: Callable[[forms.Filled, int], Response],
    done: Callable[[Any], str],
) -> Response:
    """Validate `data` with the API model and write it; a refusal shows the form again with what was typed."""
    try:
        body = forms.validate(model, data)
        with Session(state.db, expire_on_commit=False) as session:
            row = write(session, body)
    except MatcherError as exc:
        if exc.status not in (409, 422):
            raise
        filled = forms.problems(exc)
        filled.values = values
        return again(filled, 422)
    return RedirectResponse(done(row), status_code=303)


# ---------------------------------------------------------------------------------------------- enterprises


@router.get("/enterprises")
def enterprise_list(
    request: Request, state: StateDep, signed: SignedDep, q: Search = None, cursor: Cursor = None
) -> Response:
    caller = signed.caller
    with Session(state.db) as session:
        rows, next_cursor = queries.list_enterprises(session, caller=caller, q=q, cursor=cursor, limit=50)
        total = queries.count_enterprises(session, caller=caller, q=q)
    ctx = {
        "rows": rows,
        "next_cursor": next_cursor,
        "total": total,
        "q": q or "",
        "can_create": may(caller, "create", "enterprise"),
    }
    return page(request, "enterprises.html", ctx)


def _curation_rows(session: Session, caller: Caller, enterprise_id: int) -> list[dict[str, Any]]:
    if not may(caller, "read", "curation"):
        return []
    rows = curation.list_curation(session, caller=caller, enterprise_id=enterprise_id)
    titles = queries.by_ids(session, Resource, list(rows))
    return [
        {
            "resource_id": rid,
            "title": titles[rid].title,
            "kind": titles[rid].kind,
            "state": row.state,
            "note": row.note,
        }
        for rid, row in sorted(rows.items(), key=lambda x: (x[1].state or "z", -x[0]))
        if rid in titles
    ]


@router.get("/enterprises/new")
def enterprise_new(request: Request, signed: SignedDep) -> Response:
    lang = language(request)
    filled = forms.Filled(values={"digest_frequency": "weekly", "language": lang, "visibility": "public"})
    return _enterprise_form(request, filled, None)


def _enterprise_form(
    request: Request, filled: forms.Filled, row_id: int | None, status: int = 200
) -> Response:
    lang = language(request)
    from api.ui.i18n import translate

    heading = translate(lang, "rec.new_enterprise") if row_id is None else translate(lang, "rec.edit")
    action = "/ui/enterprises/new/form" if row_id is None else f"/ui/enterprises/{row_id}/edit"
    cancel = "/ui/enterprises" if row_id is None else f"/ui/enterprises/{row_id}"
    return form_page(
        request,
        heading=heading,
        action=action,
        fields=forms.ENTERPRISE,
        filled=filled,
        cancel=cancel,
        status=status,
    )


@router.post("/enterprises/new")
def enterprise_create(request: Request, state: StateDep, signed: CsrfDep, form: FormDep) -> Response:
    values = forms.read(form, forms.ENTERPRISE)
    return save(
        request,
        lambda s, body: records.create_enterprise(s, caller=signed.caller, data=body, hub=state.hub),
        state=state,
        model=EnterpriseCreate,
        data=forms.body(values, forms.ENTERPRISE, update=False),
        values=values,
        again=lambda filled, status: _enterprise_form(request, filled, None, status),
        done=lambda row: f"/ui/enterprises/{row.id}?saved=1",
    )


@router.get("/enterprises/{enterprise_id}")
def enterprise_page(
    request: Request, state: StateDep, signed: SignedDep, enterprise_id: int, saved: int = 0
) -> Response:
    caller = signed.caller
    with Session(state.db) as session:
        row = records.get_enterprise(session, caller=caller, id=enterprise_id)
        own = row.tenant_id == caller.tenant
        needs = (
            queries.list_needs(session, caller=caller, enterprise_id=enterprise_id, limit=200)[0]
            if own
            else []
        )
        ctx = {
            "e": to_public_enterprise(row, caller),
            "own": own,
            "needs": [to_public_need(n, caller, row) for n in needs],
            "curated": _curation_rows(session, caller, enterprise_id) if own else [],
            "saved": bool(saved),
            "can_edit": own and may(caller, "update", "enterprise"),
            "can_need": own and may(caller, "create", "need"),
        }
    return page(request, "enterprise.html", ctx)


@router.get("/enterprises/{enterprise_id}/edit")
def enterprise_edit(request: Request, state: StateDep, signed: SignedDep, enterprise_id: int) -> Response:
    with Session(state.db) as session:
        row = records.get_enterprise(session, caller=signed.caller, id=enterprise_id)
        if row.tenant_id != signed.caller.tenant:
            raise NotFound(f"no enterprise with id {enterprise_id}")
        filled = forms.Filled(values=forms.from_row(row, forms.ENTERPRISE, language(request)))
    return _enterprise_form(request, filled, enterprise_id)


@router.post("/enterprises/{enterprise_id}/edit")
def enterprise_update(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, enterprise_id: int
) -> Response:
    values = forms.read(form, forms.ENTERPRISE)
    return save(
        request,
        lambda s, body: records.update_enterprise(
            s, caller=signed.caller, id=enterprise_id, data=body, hub=state.hub
        ),
        state=state,
        model=EnterpriseUpdate,
        data=forms.body(values, forms.ENTERPRISE, update=True),
        values=values,
        again=lambda filled, status: _enterprise_form(request, filled, enterprise_id, status),
        done=lambda row: f"/ui/enterprises/{row.id}?saved=1",
    )


# ---------------------------------------------------------------------------------------------- needs


def _need_form(
    request: Request, filled: forms.Filled, enterprise_id: int, need_id: int | None, status: int = 200
) -> Response:
    from api.ui.i18n import translate

    lang = language(request)
    heading = translate(lang, "rec.new_need") if need_id is None else translate(lang, "rec.edit")
    action = f"/ui/enterprises/{enterprise_id}/needs/new" if need_id is None else f"/ui/needs/{need_id}/edit"
    return form_page(
        request,
        heading=heading,
        action=action,
        fields=forms.NEED,
        filled=filled,
        cancel=f"/ui/enterprises/{enterprise_id}",
        status=status,
    )


@router.get("/enterprises/{enterprise_id}/needs/new")
def need_new(request: Request, state: StateDep, signed: SignedDep, enterprise_id: int) -> Response:
    with Session(state.db) as session:
        ent = records.get_enterprise(session, caller=signed.caller, id=enterprise_id)
        if ent.tenant_id != signed.caller.tenant:
            raise NotFound(f"no enterprise with id {enterprise_id}")
    return _need_form(
        request, forms.Filled(values={"status": "open", "visibility": "public"}), enterprise_id, None
    )


@router.post("/enterprises/{enterprise_id}/needs/new")
def need_create(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, enterprise_id: int
) -> Response:
    values = forms.read(form, forms.NEED)
    data = forms.body(values, forms.NEED, update=False) | {"enterprise_id": enterprise_id}
    return save(
        request,
        lambda s, body: records.create_need(s, caller=signed.caller, data=body, hub=state.hub),
        state=state,
        model=NeedCreate,
        data=data,
        values=values,
        again=lambda filled, status: _need_form(request, filled, enterprise_id, None, status),
        done=lambda row: f"/ui/enterprises/{row.enterprise_id}?saved=1",
    )


@router.get("/needs/{need_id}/edit")
def need_edit(request: Request, state: StateDep, signed: SignedDep, need_id: int) -> Response:
    with Session(state.db) as session:
        row = records.get_need(session, caller=signed.caller, id=need_id)
        if row.tenant_id != signed.caller.tenant:
            raise NotFound(f"no need with id {need_id}")
        filled = forms.Filled(values=forms.from_row(row, forms.NEED, language(request)))
        enterprise_id = row.enterprise_id
    return _need_form(request, filled, enterprise_id, need_id)


@router.post("/needs/{need_id}/edit")
def need_update(request: Request, state: StateDep, signed: CsrfDep, form: FormDep, need_id: int) -> Response:
    values = forms.read(form, forms.NEED)
    with Session(state.db) as session:
        enterprise_id = records.get_need(session, caller=signed.caller, id=need_id).enterprise_id
    return save(
        request,
        lambda s, body: records.update_need(s, caller=signed.caller, id=need_id, data=body, hub=state.hub),
        state=state,
        model=NeedUpdate,
        data=forms.body(values, forms.NEED, update=True),
        values=values,
        again=lambda filled, status: _need_form(request, filled, enterprise_id, need_id, status),
        done=lambda row: f"/ui/enterprises/{row.enterprise_id}?saved=1",
    )
