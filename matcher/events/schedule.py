"""Scheduling a docking event: the participants still there, the pipeline's pair scores, the solver's plan,
the meetings stored with an impression each (so that outcomes become feedback), and who was left out and why."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy
from sqlmodel import Session, col, select

from matcher.domain.event_schemas import LeftOut, MeetingPublic, SchedulePublic
from matcher.domain.park_tables import DockingEvent, EventMeeting, EventParticipant, EventSchedule
from matcher.domain.tables import Enterprise, Resource, as_utc
from matcher.errors import NotFound
from matcher.events.scoring import PairScores, score_pairs
from matcher.events.solver import Problem, Solution, solve
from matcher.events.store import get_event, list_participants
from matcher.matching.engine import MatchEngine
from matcher.outcomes.impressions import add_impression
from matcher.store import audit
from matcher.store.keys import Caller

SOLVER = f"HiGHS (scipy {scipy.__version__}): MILP with column generation; slots by bipartite edge colouring"

# reason -> (zh, en); {slots}, {tables}, {places}, {cap} are filled in
REASONS: dict[str, tuple[str, str]] = {
    "record_removed": ("记录已删除或已不属于本园区", "the record was deleted or is no longer the park's"),
    "no_counterpart": ("活动中没有另一方的参与者", "the event has no participant on the other side"),
    "no_fit": (
        "另一方参与者中没有匹配度高于活动下限的",
        "no participant on the other side scores above the event's floor with it",
    ),
    "avoided": ("与之匹配的对方都在回避名单中", "every counterpart that fits is on an avoid list"),
    "event_full": (
        "全部 {places} 个洽谈席位（{slots} 个时段 × {tables} 张桌）已安排给匹配度更高的配对",
        "all {places} meeting places ({slots} slots x {tables} tables) went to better-scoring pairs",
    ),
    "counterparts_full": (
        "与之匹配的对方已排满（每方最多 {cap} 场），名额给了匹配度更高的配对",
        "every counterpart that fits reached its cap of meetings with better-scoring pairs",
    ),
    "cap_reached": ("一方的洽谈场次已满", "one side's meetings are at its cap"),
}


def reason(code: str, **values: Any) -> tuple[str, str]:
    zh, en = REASONS[code]
    return zh.format(**values), en.format(**values)


@dataclass
class _Sides:
    demand: list[EventParticipant]
    supply: list[EventParticipant]
    removed: list[EventParticipant]


def _sides(session: Session, tenant: str, parts: Sequence[EventParticipant]) -> _Sides:
    """Participants whose records are still the park's, by side; the others are left out."""
    ent_ids = [p.enterprise_id for p in parts if p.enterprise_id]
    res_ids = [p.resource_id for p in parts if p.resource_id]
    ents = {
        e.id
        for e in session.exec(
            select(Enterprise).where(col(Enterprise.id).in_(ent_ids), Enterprise.tenant_id == tenant)
        )
    }
    res = {
        r.id
        for r in session.exec(
            select(Resource).where(col(Resource.id).in_(res_ids), Resource.tenant_id == tenant)
        )
    }
    out = _Sides([], [], [])
    for p in parts:
        if p.side == "demand" and p.enterprise_id in ents:
            out.demand.append(p)
        elif p.side == "supply" and p.resource_id in res:
            out.supply.append(p)
        else:
            out.removed.append(p)
    return out


def _problem(ev: DockingEvent, sides: _Sides, scores: np.ndarray) -> Problem:
    w = np.where(scores > ev.min_score, scores, 0.0)
    d_index = {p.id: i for i, p in enumerate(sides.demand)}
    s_index = {p.id: j for j, p in enumerate(sides.supply)}
    wanted, avoided = set(), set()
    for i, p in enumerate(sides.demand):
        wanted |= {(i, s_index[q]) for q in p.want if q in s_index}
        avoided |= {(i, s_index[q]) for q in p.avoid if q in s_index}
    for j, p in enumerate(sides.supply):
        wanted |= {(d_index[q], j) for q in p.want if q in d_index}
        avoided |= {(d_index[q], j) for q in p.avoid if q in d_index}
    cap = ev.max_meetings_per_participant
    return Problem(
        scores=w,
        slots=len(ev.slots),
        tables=ev.tables,
        cap_demand=np.array([p.max_meetings or cap for p in sides.demand], dtype=np.int64),
        cap_supply=np.array([p.max_meetings or cap for p in sides.supply], dtype=np.int64),
        wanted=frozenset(wanted),
        avoided=frozenset(avoided),
    )


def _left_out(ev: DockingEvent, sides: _Sides, problem: Problem, sol: Solution) -> list[dict[str, Any]]:
    met_d = {m.demand for m in sol.meetings}
    met_s = {m.supply for m in sol.meetings}
    fill = dict(
        slots=problem.slots,
        tables=problem.tables,
        places=problem.slots * problem.tables,
        cap=ev.max_meetings_per_participant,
    )
    full = len(sol.meetings) >= problem.slots * problem.tables
    w = problem.scores
    wants = {ij for ij in problem.wanted if ij not in problem.avoided}
    out: list[dict[str, Any]] = []

    def add(p: EventParticipant, code: str) -> None:
        zh, en = reason(code, **fill)
        out.append(
            dict(participant_id=p.id, side=p.side, enterprise_id=p.enterprise_id, resource_id=p.resource_id)
            | dict(reason=code, zh=zh, en=en)
        )

    for p in sides.removed:
        add(p, "record_removed")
    for axis, parts, met, other in (
        (0, sides.demand, met_d, sides.supply),
        (1, sides.supply, met_s, sides.demand),
    ):
        for k, p in enumerate(parts):
            if k in met:
                continue
            line = w[k, :] if axis == 0 else w[:, k]
            fits = {x for x in np.flatnonzero(line > 0)} | {ij[1 - axis] for ij in wants if ij[axis] == k}
            pairs = {((k, x) if axis == 0 else (x, k)) for x in fits}
            if not other:
                add(p, "no_counterpart")
            elif not fits:
                add(p, "no_fit")
            elif pairs <= problem.avoided:
                add(p, "avoided")
            else:
                add(p, "event_full" if full else "counterparts_full")
    return out


def schedule_event(
    session: Session,
    *,
    caller: Caller,
    engine: MatchEngine,
    event_id: int,
    time_limit_s: float = 25.0,
    coverage_bonus: float = 0.0,
) -> EventSchedule:
    """Plan the event's meetings, store the plan as its latest, and return it (committed by the caller).
    `coverage_bonus`: what each participant's first meeting adds to the objective (0: the total score alone)."""
    ev = get_event(session, caller=caller, id=event_id, action="update")
    sides = _sides(session, caller.tenant, list_participants(session, caller=caller, event_id=ev.id))
    t0 = time.perf_counter()
    scored = score_pairs(
        engine,
        caller.tenant,
        [p.enterprise_id or 0 for p in sides.demand],
        [p.resource_id or 0 for p in sides.supply],
    )
    t1 = time.perf_counter()
    problem = _problem(ev, sides, scored.scores)
    sol = solve(problem, time_limit=time_limit_s, coverage=coverage_bonus)
    t2 = time.perf_counter()
    schedule = EventSchedule(
        event_id=ev.id,
        tenant_id=caller.tenant,
        objective=round(sol.objective, 6),
        bound=round(sol.bound, 6),
        gap=round(sol.gap, 6),
        status=sol.status,
        solver=SOLVER,
        model_version=scored.model_version,
        left_out=_left_out(ev, sides, problem, sol),
        unmet_wants=[
            dict(
                demand_participant_id=sides.demand[i].id,
                supply_participant_id=sides.supply[j].id,
                reason=code,
                **dict(zip(("zh", "en"), reason(code, **_fill(problem)), strict=True)),
            )
            for i, j, code in sol.unmet_wants
        ],
        stats={
            "participants": {
                "demand": len(sides.demand),
                "supply": len(sides.supply),
                "removed": len(sides.removed),
            },
            "pairs_scored": int(problem.scores.size),
            "pairs_fitting": int((problem.scores > 0).sum()),
            "capacity": problem.slots * problem.tables,
            "meetings": len(sol.meetings),
            "total_score": round(sol.total_score, 6),
            "coverage_bonus": coverage_bonus,
            "participants_met": len({m.demand for m in sol.meetings}) + len({m.supply for m in sol.meetings}),
            "candidates": sol.candidates,
            "rounds": sol.rounds,
            "seconds": {"score": round(t1 - t0, 3), "solve": round(t2 - t1, 3), **sol.seconds},
        },
        created_by=caller.key_id,
    )
    session.add(schedule)
    session.flush()
    _store_meetings(session, caller.tenant, ev, schedule, sides, sol, scored)
    ev.status = "scheduled"
    session.add(ev)
    summary = {"meetings": len(sol.meetings), "objective": schedule.objective, "gap": schedule.gap}
    audit.record(session, caller, "event.schedule", record_type="event", record_id=ev.id, summary=summary)
    session.flush()
    return schedule


def _store_meetings(
    session: Session,
    tenant: str,
    ev: DockingEvent,
    schedule: EventSchedule,
    sides: _Sides,
    sol: Solution,
    scored: PairScores,
) -> None:
    """Each meeting, explained, with an impression of its own (its request_id is what feedback names)."""
    explanations = scored.explain([(m.demand, m.supply) for m in sol.meetings])
    for m in sol.meetings:
        d, s = sides.demand[m.demand], sides.supply[m.supply]
        request_id = uuid.uuid4().hex
        need_id = scored.need_of(m.demand, m.supply)
        session.add(
            EventMeeting(
                schedule_id=schedule.id,
                event_id=ev.id,
                tenant_id=tenant,
                slot=m.slot,
                table_no=m.table + 1,
                demand_participant_id=d.id,
                supply_participant_id=s.id,
                enterprise_id=d.enterprise_id,
                resource_id=s.resource_id,
                need_id=need_id,
                score=round(m.score, 6),
                wanted=m.wanted,
                explanation=_explanation(explanations.get((m.demand, m.supply)), m.wanted),
                request_id=request_id,
            )
        )
        add_impression(
            session,
            request_id=request_id,
            tenant=tenant,
            resource_id=int(s.resource_id or 0),
            enterprise_id=d.enterprise_id,
            need_id=need_id,
            score=float(m.score),
            features=scored.features(m.demand, m.supply),
            model_version=scored.model_version,
        )


def _fill(problem: Problem) -> dict[str, Any]:
    return dict(slots=problem.slots, tables=problem.tables, places=problem.slots * problem.tables, cap="")


def _explanation(ex: dict[str, Any] | None, wanted: bool) -> dict[str, Any]:
    out = dict(ex or {})
    if wanted:
        out["wanted"] = True
        note = "应参与方要求安排 / arranged at a participant's request"
        out["summary"] = f"{out['summary']}；{note}" if out.get("summary") else note
    return out


# ---------------------------------------------------------------- reading the plan


def latest_schedule(session: Session, event_id: int) -> EventSchedule | None:
    stmt = (
        select(EventSchedule).where(EventSchedule.event_id == event_id).order_by(col(EventSchedule.id).desc())
    )
    return session.exec(stmt).first()


def meetings_of(session: Session, schedule_id: int) -> list[EventMeeting]:
    stmt = select(EventMeeting).where(EventMeeting.schedule_id == schedule_id)
    return list(session.exec(stmt.order_by(EventMeeting.slot, EventMeeting.table_no)))


def get_schedule(session: Session, *, caller: Caller, event_id: int) -> tuple[DockingEvent, EventSchedule]:
    ev = get_event(session, caller=caller, id=event_id)
    schedule = latest_schedule(session, ev.id)
    if schedule is None:
        raise NotFound(f"event {event_id} has no schedule yet; POST /v1/events/{event_id}/schedule makes one")
    return ev, schedule


def meeting_view(ev: DockingEvent, m: EventMeeting) -> MeetingPublic:
    slot = ev.slots[m.slot] if 0 <= m.slot < len(ev.slots) else {"start": "", "end": ""}
    data = m.model_dump()
    data.update(start=slot["start"], end=slot["end"], table=m.table_no)
    return MeetingPublic.model_validate(data)


def schedule_view(session: Session, ev: DockingEvent, schedule: EventSchedule) -> SchedulePublic:
    meetings = [meeting_view(ev, m) for m in meetings_of(session, schedule.id or 0)]
    data = schedule.model_dump()
    data.update(
        meetings=meetings,
        left_out=[LeftOut.model_validate(x) for x in schedule.left_out],
        stale=as_utc(ev.updated_at) > as_utc(schedule.created_at),
        created_at=as_utc(schedule.created_at),
    )
    return SchedulePublic.model_validate(data)
