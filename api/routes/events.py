"""/v1/events: docking events (科技成果供需对接活动) with 1:1 meetings: participants, the meeting plan, agendas
(XLSX and bilingual email) and outcomes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Response

from api.deps import CallerDep, SessionDep, StateDep, get_matcher
from api.errors import UNAVAILABLE_RESPONSES
from api.idempotency import IdempotencyDep, create_once
from api.routes.digests import SenderDep
from matcher.domain.event_schemas import (
    AgendaPublic,
    AgendaSendReport,
    EventCreate,
    EventPublic,
    EventsPublic,
    MeetingPublic,
    OutcomeCreate,
    ParticipantCreate,
    ParticipantPublic,
    ParticipantsPublic,
    ParticipantUpdate,
    SchedulePublic,
    ScheduleRequest,
)
from matcher.events import agenda, outcomes, schedule, store
from matcher.matching.engine import MatchEngine

router = APIRouter(prefix="/events", tags=["events"])
MatcherDep = Annotated[MatchEngine, Depends(get_matcher)]
XLSX = {"content": {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}}}


def _xlsx(data: bytes, filename: str) -> Response:
    return Response(
        data,
        media_type=agenda.XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.post("", status_code=201, response_model=EventPublic, summary="Create a docking event")
def create_event(data: EventCreate, session: SessionDep, caller: CallerDep, idem: IdempotencyDep):
    """Slots in time order without overlaps, at least one table; max_meetings_per_participant defaults to one
    per slot."""
    return create_once(
        session,
        idem,
        lambda: store.to_public_event(session, store.create_event(session, caller=caller, data=data)),
    )


@router.get("", response_model=EventsPublic, summary="List the park's events")
def list_events(session: SessionDep, caller: CallerDep) -> EventsPublic:
    rows = [store.to_public_event(session, ev) for ev in store.list_events(session, caller=caller)]
    return EventsPublic(data=rows, count=len(rows))


@router.get("/{event_id}", response_model=EventPublic, summary="Get an event")
def get_event(event_id: int, session: SessionDep, caller: CallerDep) -> EventPublic:
    return store.to_public_event(session, store.get_event(session, caller=caller, id=event_id))


@router.delete("/{event_id}", status_code=204, response_class=Response, summary="Delete an event")
def delete_event(event_id: int, session: SessionDep, caller: CallerDep) -> None:
    store.delete_event(session, caller=caller, id=event_id)
    session.commit()


# ---------------------------------------------------------------- participants


@router.post(
    "/{event_id}/participants", status_code=201, response_model=ParticipantPublic, summary="Add a participant"
)
def add_participant(
    event_id: int, data: ParticipantCreate, session: SessionDep, caller: CallerDep, idem: IdempotencyDep
):
    """`enterprise_id` (demand side) or `resource_id` (supply side), of the caller's park; `avoid` and `want`
    name other participants of the event, on the other side."""

    def create() -> ParticipantPublic:
        p = store.add_participant(session, caller=caller, event_id=event_id, data=data)
        return store.participant_views(session, [p])[0]

    return create_once(session, idem, create)


@router.get("/{event_id}/participants", response_model=ParticipantsPublic, summary="List participants")
def list_participants(event_id: int, session: SessionDep, caller: CallerDep) -> ParticipantsPublic:
    rows = store.participant_views(
        session, store.list_participants(session, caller=caller, event_id=event_id)
    )
    return ParticipantsPublic(data=rows, count=len(rows))


@router.patch(
    "/{event_id}/participants/{participant_id}",
    response_model=ParticipantPublic,
    summary="Update a participant",
)
def update_participant(
    event_id: int, participant_id: int, data: ParticipantUpdate, session: SessionDep, caller: CallerDep
) -> ParticipantPublic:
    p = store.update_participant(session, caller=caller, event_id=event_id, id=participant_id, data=data)
    out = store.participant_views(session, [p])[0]
    session.commit()
    return out


@router.delete(
    "/{event_id}/participants/{participant_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a participant",
)
def remove_participant(event_id: int, participant_id: int, session: SessionDep, caller: CallerDep) -> None:
    store.remove_participant(session, caller=caller, event_id=event_id, id=participant_id)
    session.commit()


# ---------------------------------------------------------------- the plan


@router.post(
    "/{event_id}/schedule",
    response_model=SchedulePublic,
    responses=UNAVAILABLE_RESPONSES,
    summary="Plan the 1:1 meetings",
)
def make_schedule(
    event_id: int,
    session: SessionDep,
    caller: CallerDep,
    engine: MatcherDep,
    idem: IdempotencyDep,
    body: Annotated[ScheduleRequest | None, Body()] = None,
):
    """The meetings that maximise the total match score: nobody twice in a slot, at most `tables` meetings a
    slot, each participant within its cap, avoid lists kept, wanted pairs first. `bound` is an upper bound of
    any plan's total (`gap` 0: proven optimal); `left_out` says who got no meeting and why. With an
    Idempotency-Key a retry gets the plan the first call made."""
    req = body or ScheduleRequest()

    def plan() -> SchedulePublic:
        sched = schedule.schedule_event(
            session,
            caller=caller,
            engine=engine,
            event_id=event_id,
            time_limit_s=float(req.time_limit_s),
            coverage_bonus=float(req.coverage_bonus),
        )
        ev = store.get_event(session, caller=caller, id=event_id)
        return schedule.schedule_view(session, ev, sched)

    return create_once(session, idem, plan, status_code=200)


@router.get("/{event_id}/schedule", response_model=SchedulePublic, summary="The latest plan")
def get_schedule(event_id: int, session: SessionDep, caller: CallerDep) -> SchedulePublic:
    ev, sched = schedule.get_schedule(session, caller=caller, event_id=event_id)
    return schedule.schedule_view(session, ev, sched)


@router.get(
    "/{event_id}/schedule.xlsx", response_class=Response, responses={200: XLSX}, summary="The plan as XLSX"
)
def schedule_xlsx(event_id: int, session: SessionDep, caller: CallerDep) -> Response:
    return _xlsx(agenda.event_xlsx(session, caller=caller, event_id=event_id), f"event-{event_id}.xlsx")


@router.get(
    "/{event_id}/participants/{participant_id}/agenda",
    response_model=AgendaPublic,
    summary="A participant's agenda",
)
def get_agenda(event_id: int, participant_id: int, session: SessionDep, caller: CallerDep) -> AgendaPublic:
    return agenda.agenda(session, caller=caller, event_id=event_id, participant_id=participant_id)


@router.get(
    "/{event_id}/participants/{participant_id}/agenda.xlsx",
    response_class=Response,
    responses={200: XLSX},
    summary="A participant's agenda as XLSX",
)
def get_agenda_xlsx(event_id: int, participant_id: int, session: SessionDep, caller: CallerDep) -> Response:
    a = agenda.agenda(session, caller=caller, event_id=event_id, participant_id=participant_id)
    return _xlsx(agenda.agenda_xlsx(a), f"agenda-{event_id}-{participant_id}.xlsx")


@router.post("/{event_id}/agendas:send", response_model=AgendaSendReport, summary="Mail every agenda")
def send_agendas(
    event_id: int,
    session: SessionDep,
    caller: CallerDep,
    state: StateDep,
    sender: SenderDep,
    idem: IdempotencyDep,
):
    """A bilingual email with the XLSX agenda to each participant with an address. With an Idempotency-Key a
    retry sends nothing again and gets the first report."""
    store.get_event(session, caller=caller, id=event_id, action="update")

    def send() -> AgendaSendReport:
        try:
            return agenda.send_agendas(
                session, caller=caller, event_id=event_id, sender=sender, mail_from=state.settings.mail_from
            )
        finally:
            sender.close()

    return create_once(session, idem, send, status_code=200)


@router.post(
    "/{event_id}/meetings/{meeting_id}/outcome",
    response_model=MeetingPublic,
    summary="Record a meeting's outcome",
)
def record_outcome(
    event_id: int,
    meeting_id: int,
    data: OutcomeCreate,
    session: SessionDep,
    caller: CallerDep,
    idem: IdempotencyDep,
):
    """met, follow_up, deal (with an amount), no_show, not_relevant; all but no_show are also outcome feedback
    on the match (POST /v1/feedback's actions contacted, accepted, deal, rejected) that rankers learn from."""

    def record() -> MeetingPublic:
        m = outcomes.record_outcome(
            session, caller=caller, event_id=event_id, meeting_id=meeting_id, data=data
        )
        ev = store.get_event(session, caller=caller, id=event_id)
        return schedule.meeting_view(ev, m)

    return create_once(session, idem, record, status_code=200)
