"""Docking events and their participants: create, read, change and delete, under the caller's tenant.

An event and its participants belong to one park: a participant is one of the park's own enterprises (demand
side) or resources (supply side; a research result, scenario, fund or incubator each). Who may do what is the
permission matrix's "event" row; every write is audited in its own transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, delete, func, select

from matcher.domain.event_schemas import (
    EventCreate,
    EventPublic,
    ParticipantCreate,
    ParticipantPublic,
    ParticipantUpdate,
    Slot,
)
from matcher.domain.park_tables import (
    DockingEvent,
    EventMeeting,
    EventParticipant,
    EventSchedule,
)
from matcher.domain.permissions import authorize
from matcher.domain.tables import Enterprise, Resource, as_utc, utcnow
from matcher.domain.visibility import visible_to
from matcher.errors import Conflict, NotFound, invalid
from matcher.store import audit
from matcher.store.db import valid_id
from matcher.store.keys import Caller, ensure_tenant


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def check_slots(slots: Sequence[Slot]) -> None:
    """Each slot ends after it starts; slots come in time order and do not overlap (422 naming the slot)."""
    for k, s in enumerate(slots):
        if _minutes(s.end) <= _minutes(s.start):
            raise invalid(
                f"slots.{k}.end",
                f"slot {k} ends at {s.end}, not after it starts at {s.start} / 时段结束时间须晚于开始时间",
                "slot_order",
            )
        if k and _minutes(s.start) < _minutes(slots[k - 1].end):
            prev = slots[k - 1]
            what = "overlaps" if _minutes(s.start) >= _minutes(prev.start) else "comes before"
            raise invalid(
                f"slots.{k}",
                f"slot {k} ({s.start}-{s.end}) {what} slot {k - 1} ({prev.start}-{prev.end}); slots must be in "
                "time order without overlaps / 时段须按时间顺序且互不重叠",
                "slot_overlap",
            )


def to_public_event(session: Session, ev: DockingEvent) -> EventPublic:
    n = session.exec(select(func.count()).where(EventParticipant.event_id == ev.id)).one()
    data = ev.model_dump()
    data.update(participants=n, created_at=as_utc(ev.created_at), updated_at=as_utc(ev.updated_at))
    return EventPublic.model_validate(data)


def create_event(session: Session, *, caller: Caller, data: EventCreate) -> DockingEvent:
    authorize(caller, "create", "event", owner_tenant=caller.tenant)
    check_slots(data.slots)
    ensure_tenant(session, caller.tenant)
    ev = DockingEvent(
        tenant_id=caller.tenant,
        title=data.title,
        date=data.date,
        location=data.location,
        slots=[s.model_dump() for s in data.slots],
        tables=data.tables,
        max_meetings_per_participant=data.max_meetings_per_participant or len(data.slots),
        min_score=float(data.min_score),
        created_by=caller.key_id,
    )
    session.add(ev)
    session.flush()
    summary = {"slots": len(data.slots), "tables": data.tables}
    audit.record(session, caller, "create", record_type="event", record_id=ev.id, summary=summary)
    return ev


def get_event(session: Session, *, caller: Caller, id: int, action: str = "read") -> DockingEvent:
    """The caller's tenant's event; another tenant's reads as not found."""
    authorize(caller, action, "event", owner_tenant=None)
    ev = session.get(DockingEvent, id) if valid_id(id) else None
    if ev is None:
        raise NotFound(f"no event with id {id}")
    authorize(caller, action, "event", owner_tenant=ev.tenant_id, record=f"event with id {id}")
    return ev


def list_events(session: Session, *, caller: Caller) -> list[DockingEvent]:
    authorize(caller, "read", "event", owner_tenant=caller.tenant)
    stmt = select(DockingEvent).where(DockingEvent.tenant_id == caller.tenant)
    return list(session.exec(stmt.order_by(col(DockingEvent.date).desc(), col(DockingEvent.id).desc())))


def delete_event(session: Session, *, caller: Caller, id: int) -> None:
    ev = get_event(session, caller=caller, id=id, action="delete")
    session.exec(delete(EventMeeting).where(EventMeeting.event_id == id))
    session.exec(delete(EventSchedule).where(EventSchedule.event_id == id))
    session.exec(delete(EventParticipant).where(EventParticipant.event_id == id))
    session.delete(ev)
    session.flush()
    audit.record(session, caller, "delete", record_type="event", record_id=id)


# ---------------------------------------------------------------- participants


def _own_record(
    session: Session, caller: Caller, model: type[Enterprise | Resource], id: int, field: str
) -> Any:
    """The park's own enterprise or resource; another tenant's is refused (422), naming why when visible."""
    row = session.get(model, id) if valid_id(id) else None
    noun = model.__name__.lower()
    if row is None or not visible_to(row, caller.tenant):
        raise invalid(field, f"no {noun} with id {id} in your tenant / 本园区无此记录", "not_found")
    if row.tenant_id != caller.tenant:
        raise invalid(
            field,
            f"{noun} {id} belongs to another tenant; an event's participants are your park's own records "
            "/ 活动参与方须为本园区的记录",
            "other_tenant",
        )
    return row


def _check_links(
    session: Session,
    ev: DockingEvent,
    side: str,
    avoid: Sequence[int],
    want: Sequence[int],
    own_id: int | None,
) -> None:
    """avoid and want name participants of this event on the other side, and not the same one twice."""
    both = set(avoid) & set(want)
    if both:
        raise invalid("want", f"participant {min(both)} is in both avoid and want", "conflict")
    ids = set(avoid) | set(want)
    if not ids:
        return
    rows = session.exec(
        select(EventParticipant).where(EventParticipant.event_id == ev.id, col(EventParticipant.id).in_(ids))
    )
    found = {p.id: p for p in rows}
    for name, values in (("avoid", avoid), ("want", want)):
        for k, pid in enumerate(values):
            p = found.get(pid)
            if p is None or pid == own_id:
                raise invalid(f"{name}.{k}", f"participant {pid} is not another participant of event {ev.id}")
            if p.side == side:
                raise invalid(
                    f"{name}.{k}",
                    f"participant {pid} is on the same side ({side}); meetings pair a demand-side participant "
                    "with a supply-side one / 洽谈在需求方与供给方之间进行",
                    "same_side",
                )


def _touch(ev: DockingEvent, session: Session) -> None:
    ev.updated_at = utcnow()
    session.add(ev)


def add_participant(
    session: Session, *, caller: Caller, event_id: int, data: ParticipantCreate
) -> EventParticipant:
    ev = get_event(session, caller=caller, id=event_id, action="update")
    enterprise_id = getattr(data, "enterprise_id", None)
    resource_id = getattr(data, "resource_id", None)
    if enterprise_id is not None:
        side, field, rid = "demand", "enterprise_id", enterprise_id
        row = _own_record(session, caller, Enterprise, rid, field)
        column = EventParticipant.enterprise_id
    else:
        side, field, rid = "supply", "resource_id", int(resource_id or 0)
        row = _own_record(session, caller, Resource, rid, field)
        column = EventParticipant.resource_id
    taken = session.exec(
        select(EventParticipant.id).where(EventParticipant.event_id == ev.id, column == rid)
    ).first()
    if taken is not None:
        raise Conflict(
            f"{field} {rid} already takes part in event {ev.id} as participant {taken} / 该记录已是活动参与方",
            errors=[{"field": field, "message": "already a participant", "type": "conflict"}],
        )
    _check_links(session, ev, side, data.avoid, data.want, None)
    p = EventParticipant(
        event_id=ev.id,
        tenant_id=caller.tenant,
        side=side,
        enterprise_id=enterprise_id,
        resource_id=resource_id,
        avoid=list(dict.fromkeys(data.avoid)),
        want=list(dict.fromkeys(data.want)),
        max_meetings=data.max_meetings,
        email=data.email or (row.email if side == "demand" else None),
    )
    session.add(p)
    _touch(ev, session)
    session.flush()
    summary = {"event_id": ev.id, "side": side, field: rid}
    audit.record(session, caller, "participant.add", record_type="event", record_id=ev.id, summary=summary)
    return p


def get_participant(session: Session, *, caller: Caller, event_id: int, id: int, action: str = "read") -> Any:
    ev = get_event(session, caller=caller, id=event_id, action=action)
    p = session.get(EventParticipant, id) if valid_id(id) else None
    if p is None or p.event_id != ev.id:
        raise NotFound(f"no participant with id {id} in event {event_id}")
    return ev, p


def update_participant(
    session: Session, *, caller: Caller, event_id: int, id: int, data: ParticipantUpdate
) -> EventParticipant:
    ev, p = get_participant(session, caller=caller, event_id=event_id, id=id, action="update")
    given = data.model_dump(exclude_unset=True)
    avoid = given.get("avoid", p.avoid) or []
    want = given.get("want", p.want) or []
    _check_links(session, ev, p.side, avoid, want, p.id)
    for name, value in given.items():
        setattr(p, name, list(dict.fromkeys(value)) if name in ("avoid", "want") and value else value)
    session.add(p)
    _touch(ev, session)
    session.flush()
    summary = {"participant_id": p.id, "fields": sorted(given)}
    audit.record(session, caller, "participant.update", record_type="event", record_id=ev.id, summary=summary)
    return p


def remove_participant(session: Session, *, caller: Caller, event_id: int, id: int) -> None:
    """Remove a participant; others' avoid and want lists forget it."""
    ev, p = get_participant(session, caller=caller, event_id=event_id, id=id, action="update")
    for other in session.exec(select(EventParticipant).where(EventParticipant.event_id == ev.id)):
        if id in other.avoid or id in other.want:
            other.avoid = [x for x in other.avoid if x != id]
            other.want = [x for x in other.want if x != id]
            session.add(other)
    session.delete(p)
    _touch(ev, session)
    session.flush()
    summary = {"participant_id": id}
    audit.record(session, caller, "participant.remove", record_type="event", record_id=ev.id, summary=summary)


def list_participants(session: Session, *, caller: Caller, event_id: int) -> list[EventParticipant]:
    ev = get_event(session, caller=caller, id=event_id)
    stmt = select(EventParticipant).where(EventParticipant.event_id == ev.id).order_by(EventParticipant.id)
    return list(session.exec(stmt))


def participant_views(session: Session, rows: Sequence[EventParticipant]) -> list[ParticipantPublic]:
    """Participants with the name of the record behind each (None once the record is deleted)."""
    ents = {e.id: e for e in _rows(session, Enterprise, [p.enterprise_id for p in rows])}
    res = {r.id: r for r in _rows(session, Resource, [p.resource_id for p in rows])}
    out = []
    for p in rows:
        e, r = ents.get(p.enterprise_id or 0), res.get(p.resource_id or 0)
        data = p.model_dump()
        data.update(
            name=e.name if e is not None else (r.title if r is not None else None),
            kind=r.kind if r is not None else None,
            created_at=as_utc(p.created_at),
        )
        out.append(ParticipantPublic.model_validate(data))
    return out


def _rows(session: Session, model: type[Enterprise | Resource], ids: Sequence[int | None]) -> list[Any]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return []
    return list(session.exec(select(model).where(col(model.id).in_(wanted))))
