"""Docking events in the workbench: the park's events, the form that creates one (slots, tables, caps), an
event's page (participants with their avoid and want lists, the plan as a grid of slots x tables with each
meeting's score and why, the objective, bound and gap, who was left out and why), agendas as XLSX, and outcomes
after the event. Every write goes through matcher/events as the API's does: the same rules and messages, and an
outcome becomes feedback on the meeting's impression."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlmodel import Session, select

from api.deps import StateDep
from api.ui import forms
from api.ui.auth import CsrfDep, SignedDep, may
from api.ui.i18n import translate
from api.ui.records import FormDep
from api.ui.render import language, page
from matcher.domain.event_schemas import EventCreate, OutcomeCreate, ParticipantCreate
from matcher.domain.tables import Enterprise, Resource
from matcher.errors import MatcherError, ServiceUnavailable, invalid_input
from matcher.events import agenda, outcomes, schedule, store
from matcher.store.keys import Caller

router = APIRouter()
OPTIONS = 1000  # the park's records offered as participants
EVENT_FIELDS = ("title", "date", "location", "slots", "tables", "max_meetings_per_participant", "min_score")
ADD_FIELDS = ("record", "max_meetings", "email")
OUTCOMES = ("met", "follow_up", "deal", "no_show", "not_relevant")


def _typed(form: Any, names: tuple[str, ...], limit: int = 5000) -> dict[str, str]:
    out = {}
    for name in names:
        v = form.get(name)
        out[name] = v.replace("\r\n", "\n")[:limit] if isinstance(v, str) else ""
    return out


def _number(text: str) -> Any:
    return forms._as_number(text)


def parse_slots(text: str) -> list[dict[str, str]]:
    """One slot a line, "09:00-09:20" (or with ~, –, a space or 至 between): as the API's slot objects; a line
    that does not split is sent as typed for the model to refuse."""
    slots = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        parts = [p for p in re.split(r"\s*(?:-|–|—|~|～|至|to|\s)\s*", line) if p]
        start, end = (parts[0], parts[1]) if len(parts) == 2 else (line, "")
        slots.append({"start": start.replace("：", ":"), "end": end.replace("：", ":")})
    return slots


def _problems(exc: MatcherError) -> dict[str, str]:
    """The refusal's messages per form box (slots.2.end is the slots box's)."""
    out: dict[str, str] = {}
    for e in exc.errors or []:
        key = str(e.get("field", "")).removeprefix("body.").split(".")[0]
        out.setdefault(key, str(e.get("message", "")))
    return out


# ---------------------------------------------------------------------------------------------- the list


@router.get("/events")
def event_list(request: Request, state: StateDep, signed: SignedDep) -> Response:
    with Session(state.db) as session:
        rows = [store.to_public_event(session, ev) for ev in store.list_events(session, caller=signed.caller)]
    return page(request, "events.html", {"rows": rows, "can_create": may(signed.caller, "create", "event")})


def _event_form(
    request: Request, values: dict[str, str], errors: dict[str, str], summary: str | None, status: int = 200
) -> Response:
    ctx = {"values": values, "errors": errors, "summary": summary}
    return page(request, "event_new.html", ctx, status=status)


@router.get("/events/new")
def event_new(request: Request, signed: SignedDep) -> Response:
    values = {"slots": "09:00-09:20\n09:20-09:40\n09:40-10:00", "tables": "10", "min_score": "0"}
    return _event_form(request, values, {}, None)


@router.post("/events/new")
def event_create(request: Request, state: StateDep, signed: CsrfDep, form: FormDep) -> Response:
    """Create the event; a refusal (a slot ending before it starts, overlapping slots, 0 tables) shows the form
    again with the message beside the box at fault and everything typed kept."""
    values = _typed(form, EVENT_FIELDS)
    data: dict[str, Any] = {"title": values["title"], "slots": parse_slots(values["slots"])}
    for name in ("date", "location"):
        if values[name].strip():
            data[name] = values[name].strip()
    for name in ("tables", "max_meetings_per_participant", "min_score"):
        if values[name].strip():
            value = _number(values[name])
            data[name] = float(value) if name == "min_score" and isinstance(value, int) else value
    try:
        body = forms.validate(EventCreate, data)
        with Session(state.db, expire_on_commit=False) as session:
            ev = store.create_event(session, caller=signed.caller, data=body)  # type: ignore[arg-type]
            session.commit()
    except MatcherError as exc:
        if exc.status not in (409, 422):
            raise
        return _event_form(request, values, _problems(exc), exc.detail, status=422)
    return RedirectResponse(f"/ui/events/{ev.id}?saved=1", status_code=303)


# ---------------------------------------------------------------------------------------------- one event


def _choices(session: Session, caller: Caller) -> dict[str, list[tuple[str, str]]]:
    """The park's enterprises (demand side) and resources (supply side) a participant can be."""
    ents = session.exec(
        select(Enterprise.id, Enterprise.name)
        .where(Enterprise.tenant_id == caller.tenant)
        .order_by(Enterprise.name)
        .limit(OPTIONS)
    )
    res = session.exec(
        select(Resource.id, Resource.title, Resource.kind)
        .where(Resource.tenant_id == caller.tenant, Resource.status == "active")
        .order_by(Resource.kind, Resource.title)
        .limit(OPTIONS)
    )
    return {
        "demand": [(f"E{i}", n) for i, n in ents],
        "supply": [(f"R{i}", f"{t} · {k}") for i, t, k in res],
    }


def grid(ev: Any, meetings: list[Any]) -> list[dict[str, Any]]:
    """The plan as rows of slots, each with one cell per table (None where no meeting is held)."""
    cells = {(m.slot, m.table): m for m in meetings}
    return [
        {
            "slot": k,
            "start": s["start"],
            "end": s["end"],
            "cells": [cells.get((k, t)) for t in range(1, ev.tables + 1)],
        }
        for k, s in enumerate(ev.slots)
    ]


def event_page(
    request: Request,
    state: Any,
    caller: Caller,
    event_id: int,
    *,
    add: dict[str, Any] | None = None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    lang = language(request)
    with Session(state.db) as session:
        ev = store.get_event(session, caller=caller, id=event_id)
        public = store.to_public_event(session, ev)
        parts = store.participant_views(
            session, store.list_participants(session, caller=caller, event_id=ev.id)
        )
        latest = schedule.latest_schedule(session, ev.id or 0)
        plan = schedule.schedule_view(session, ev, latest) if latest is not None else None
        choices = _choices(session, caller)
    names = {p.id: p.name or f"#{p.id}" for p in parts}
    ctx = {
        "ev": public,
        "parts": parts,
        "names": names,
        "plan": plan,
        "grid": grid(ev, plan.meetings) if plan else [],
        "choices": choices,
        "add": add or {"record": "", "avoid": [], "want": [], "max_meetings": "", "email": ""},
        "error": error,
        "notice": notice,
        "outcomes": OUTCOMES,
        "can_edit": may(caller, "update", "event"),
        "summary": lambda ex: (ex.get("summary_en") if lang == "en" else None) or ex.get("summary") or "",
    }
    return page(request, "event.html", ctx, status=status)


@router.get("/events/{event_id}")
def event_show(
    request: Request, state: StateDep, signed: SignedDep, event_id: int, saved: int = 0, planned: int = 0
) -> Response:
    lang = language(request)
    notice = translate(lang, "ev.planned") if planned else (translate(lang, "rec.saved") if saved else None)
    return event_page(request, state, signed.caller, event_id, notice=notice)


def _refused(
    request: Request, state: Any, caller: Caller, event_id: int, exc: MatcherError, **kw: Any
) -> Response:
    lang = language(request)
    error = f"{translate(lang, 'error.invalid')}{translate(lang, 'colon')}{exc.detail}"
    return event_page(request, state, caller, event_id, error=error, status=exc.status, **kw)


@router.post("/events/{event_id}/participants")
def participant_add(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, event_id: int
) -> Response:
    """Add one of the park's enterprises (demand side) or resources (supply side), with its avoid and want
    lists; a refusal shows the page with the message and the form as it was filled."""
    typed: dict[str, Any] = _typed(form, ADD_FIELDS, 300)
    typed["avoid"] = [v for v in form.getlist("avoid") if isinstance(v, str)][:1000]
    typed["want"] = [v for v in form.getlist("want") if isinstance(v, str)][:1000]
    record = typed["record"].strip()
    data: dict[str, Any] = {}
    if record[:1] in ("E", "R") and record[1:].isdigit():
        data["enterprise_id" if record[0] == "E" else "resource_id"] = int(record[1:])
    for name in ("avoid", "want"):
        data[name] = [_number(v) for v in typed[name]]
    if typed["max_meetings"].strip():
        data["max_meetings"] = _number(typed["max_meetings"])
    if typed["email"].strip():
        data["email"] = typed["email"].strip()
    try:
        try:
            body = TypeAdapter(ParticipantCreate).validate_python(data)
        except ValidationError as exc:
            raise invalid_input(exc.errors()) from None
        with Session(state.db) as session:
            store.add_participant(session, caller=signed.caller, event_id=event_id, data=body)
            session.commit()
    except MatcherError as exc:
        if exc.status not in (409, 422):
            raise
        return _refused(request, state, signed.caller, event_id, exc, add=typed)
    return RedirectResponse(f"/ui/events/{event_id}?saved=1#participants", status_code=303)


@router.post("/events/{event_id}/participants/{participant_id}/remove")
def participant_remove(
    request: Request, state: StateDep, signed: CsrfDep, event_id: int, participant_id: int
) -> Response:
    with Session(state.db) as session:
        store.remove_participant(session, caller=signed.caller, event_id=event_id, id=participant_id)
        session.commit()
    return RedirectResponse(f"/ui/events/{event_id}?saved=1#participants", status_code=303)


@router.post("/events/{event_id}/schedule")
def event_schedule(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, event_id: int
) -> Response:
    """Plan the meetings as POST /v1/events/{id}/schedule does (the solver's default time limit); with
    `coverage` ticked, as many participants as the room allows are seated first."""
    coverage = 1.0 if form.get("coverage") == "1" else 0.0
    with Session(state.db) as session:
        store.get_event(session, caller=signed.caller, id=event_id, action="update")  # 404 / 403 first
        if state.matcher is None:
            raise ServiceUnavailable("the matching indexes are still loading; retry shortly")
        schedule.schedule_event(
            session, caller=signed.caller, engine=state.matcher, event_id=event_id, coverage_bonus=coverage
        )
        session.commit()
    return RedirectResponse(f"/ui/events/{event_id}?planned=1#plan", status_code=303)


@router.post("/events/{event_id}/meetings/{meeting_id}/outcome")
def meeting_outcome(
    request: Request, state: StateDep, signed: CsrfDep, form: FormDep, event_id: int, meeting_id: int
) -> Response:
    """What happened at a meeting (met, follow-up, deal with an amount ...): stored on the meeting and, as the
    API does, recorded as outcome feedback on its impression."""
    typed = _typed(form, ("outcome", "amount", "note"), 2000)
    data: dict[str, Any] = {"outcome": typed["outcome"]}
    if typed["amount"].strip():
        data["amount"] = _number(typed["amount"])
    if typed["note"].strip():
        data["note"] = typed["note"]
    try:
        body = forms.validate(OutcomeCreate, data)
        with Session(state.db) as session:
            outcomes.record_outcome(
                session,
                caller=signed.caller,
                event_id=event_id,
                meeting_id=meeting_id,
                data=body,  # type: ignore[arg-type]
            )
            session.commit()
    except MatcherError as exc:
        if exc.status != 422:
            raise
        return _refused(request, state, signed.caller, event_id, exc)
    return RedirectResponse(f"/ui/events/{event_id}?saved=1#m-{meeting_id}", status_code=303)


# ---------------------------------------------------------------------------------------------- files


def _xlsx(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type=agenda.XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/events/{event_id}/participants/{participant_id}/agenda.xlsx")
def agenda_file(state: StateDep, signed: SignedDep, event_id: int, participant_id: int) -> Response:
    """A participant's agenda, the same file GET /v1/events/{id}/participants/{pid}/agenda.xlsx gives."""
    with Session(state.db) as session:
        a = agenda.agenda(session, caller=signed.caller, event_id=event_id, participant_id=participant_id)
    return _xlsx(agenda.agenda_xlsx(a), f"agenda-{event_id}-{participant_id}.xlsx")


@router.get("/events/{event_id}/schedule.xlsx")
def schedule_file(state: StateDep, signed: SignedDep, event_id: int) -> Response:
    with Session(state.db) as session:
        data = agenda.event_xlsx(session, caller=signed.caller, event_id=event_id)
    return _xlsx(data, f"event-{event_id}.xlsx")
