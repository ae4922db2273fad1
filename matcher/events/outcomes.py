"""What happened at a meeting, recorded after the event: the meeting's outcome, and the same fact as outcome
feedback on the match it served (its impression), which is what rankers learn from (docs/learning.md)."""

from __future__ import annotations

from sqlmodel import Session

from matcher.domain.event_schemas import OutcomeCreate
from matcher.domain.park_tables import EventMeeting
from matcher.domain.tables import utcnow
from matcher.errors import NotFound, invalid
from matcher.events.store import get_event
from matcher.outcomes.feedback import record_feedback
from matcher.store import audit
from matcher.store.db import valid_id
from matcher.store.keys import Caller

# outcome -> (feedback action, reason); no_show says nothing about the match, so it teaches nothing
FEEDBACK: dict[str, tuple[str, str | None] | None] = {
    "met": ("contacted", None),
    "follow_up": ("accepted", None),
    "deal": ("deal", None),
    "not_relevant": ("rejected", "not_relevant"),
    "no_show": None,
}


def record_outcome(
    session: Session, *, caller: Caller, event_id: int, meeting_id: int, data: OutcomeCreate
) -> EventMeeting:
    ev = get_event(session, caller=caller, id=event_id, action="update")
    m = session.get(EventMeeting, meeting_id) if valid_id(meeting_id) else None
    if m is None or m.event_id != ev.id:
        raise NotFound(f"no meeting with id {meeting_id} in event {event_id}")
    if data.amount is not None and data.outcome != "deal":
        raise invalid("amount", "an amount is only recorded with outcome 'deal'")
    m.outcome = data.outcome
    m.outcome_note = data.note
    m.outcome_amount = data.amount
    m.outcome_at = utcnow()
    m.outcome_by = caller.key_id
    session.add(m)
    session.flush()
    mapped = FEEDBACK[data.outcome]
    if mapped is not None:
        action, why = mapped
        try:
            record_feedback(
                session,
                caller=caller,
                request_id=m.request_id,
                resource_id=m.resource_id,
                action=action,
                reason=why,
                amount=data.amount,
            )
        except (
            NotFound
        ):  # the resource was deleted since: the outcome stands, there is no match left to learn on
            pass
    summary = {"meeting_id": m.id, "outcome": data.outcome}
    audit.record(session, caller, "event.outcome", record_type="event", record_id=ev.id, summary=summary)
    return m
