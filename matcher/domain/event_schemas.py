"""API shapes of docking events (科技成果供需对接活动): the event, its participants, the meeting plan, agendas and
outcomes. Types only; the rules a schema cannot state (slot order and overlaps, sides, tenancy) are
matcher/events/rules.py's."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field, StrictFloat, model_validator

from matcher.domain.schemas import Money
from matcher.domain.schemas import Strict as StrictModel
from matcher.domain.text import Email, ShortText, Title


def _integral(value: Any) -> Any:
    """A JSON number with no fraction (5.0) is the integer it names; strings and booleans stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def count(ge: int, le: int) -> Any:
    """An integer in a body within [ge, le]: JSON integers and integral numbers (5.0) only, never "5" or true;
    the bounds are in the document as minimum and maximum."""
    return Annotated[int, Field(strict=True, ge=ge, le=le), BeforeValidator(_integral)]


# a stored row's id: ids are 32-bit on every store, so a larger one names no row (and the bound is exact in JSON)
RowId = count(1, 2**31 - 1)
Tables = count(1, 10_000)
Meetings = count(1, 96)
HHMM = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, 24-hour clock")]
Outcome = Literal["met", "follow_up", "deal", "no_show", "not_relevant"]
OUTCOMES: tuple[str, ...] = ("met", "follow_up", "deal", "no_show", "not_relevant")
ParticipantIds = Annotated[list[RowId], Field(max_length=1000)]


class Slot(StrictModel):
    start: HHMM
    end: HHMM = Field(description="after `start`, the same day")


# a rule across the slots, stated in words (no JSON schema compares two values): checked by the store, 422 naming
# the slot at fault
SLOTS_RULE = (
    "in time order, none overlapping: each slot ends after it starts, and starts no earlier than the slot before "
    "it ends (422 naming the slot otherwise)"
)


class EventCreate(StrictModel):
    title: Title
    date: date
    location: ShortText | None = None
    slots: list[Slot] = Field(min_length=1, max_length=96, description=SLOTS_RULE)
    tables: Tables = Field(description="meetings that can run at once")
    max_meetings_per_participant: Meetings | None = Field(default=None, description="default: one per slot")
    min_score: StrictFloat = Field(
        default=0.0, ge=0, le=1, description="pairs scoring at or below this do not meet unless wanted"
    )


class EventPublic(BaseModel):
    id: int
    title: str
    date: date
    location: str | None
    slots: list[Slot]
    tables: int
    max_meetings_per_participant: int
    min_score: float
    status: str
    participants: int = 0
    created_at: datetime
    updated_at: datetime


class EventsPublic(BaseModel):
    data: list[EventPublic]
    count: int


class _ParticipantOptions(StrictModel):
    avoid: ParticipantIds = Field(default_factory=list, description="participant ids not to meet")
    want: ParticipantIds = Field(default_factory=list, description="participant ids to meet")
    max_meetings: Meetings | None = Field(default=None, description="default: the event's")
    email: Email | None = Field(default=None, description="where the agenda goes (default: the enterprise's)")

    @model_validator(mode="before")
    @classmethod
    def _exactly_one(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("enterprise_id" in data) == ("resource_id" in data):
            raise ValueError("give enterprise_id (demand side) or resource_id (supply side), exactly one")
        return data


class DemandParticipant(_ParticipantOptions):
    enterprise_id: RowId = Field(description="demand side: an enterprise of your park")


class SupplyParticipant(_ParticipantOptions):
    resource_id: RowId = Field(
        description="supply side: a research result, scenario, fund or incubator of your park"
    )


# exactly one of enterprise_id and resource_id: each body matches one model only (extra fields are forbidden)
ParticipantCreate = DemandParticipant | SupplyParticipant


class ParticipantUpdate(StrictModel):
    avoid: ParticipantIds | None = None
    want: ParticipantIds | None = None
    max_meetings: Meetings | None = None
    email: Email | None = None


class ParticipantPublic(BaseModel):
    id: int
    event_id: int
    side: Literal["demand", "supply"]
    enterprise_id: int | None
    resource_id: int | None
    name: str | None = Field(description="the enterprise's name or the resource's title; None once deleted")
    kind: str | None = Field(default=None, description="the resource's kind (supply side)")
    avoid: list[int]
    want: list[int]
    max_meetings: int | None
    email: str | None
    created_at: datetime


class ParticipantsPublic(BaseModel):
    data: list[ParticipantPublic]
    count: int


class ScheduleRequest(StrictModel):
    time_limit_s: StrictFloat = Field(default=25, gt=0, le=120, description="solver time limit")
    coverage_bonus: StrictFloat = Field(
        default=0,
        ge=0,
        le=10,
        description="added for each participant with at least one meeting; 0 (default): the total match score "
        "alone; 1 or more: seat as many participants as the room allows before anyone's next meeting",
    )


class MeetingPublic(BaseModel):
    id: int
    slot: int = Field(description="index in the event's slots")
    start: str
    end: str
    table: int = Field(description="table number, 1 ..")
    enterprise_id: int
    resource_id: int
    demand_participant_id: int
    supply_participant_id: int
    need_id: int | None = Field(description="the enterprise's need behind the score, if one")
    score: float
    wanted: bool
    explanation: dict[str, Any]
    request_id: str = Field(description="for POST /v1/feedback on this meeting")
    outcome: str | None = None


class LeftOut(BaseModel):
    participant_id: int
    side: str
    enterprise_id: int | None = None
    resource_id: int | None = None
    reason: str = Field(
        description="record_removed | no_counterpart | no_fit | avoided | event_full | counterparts_full"
    )
    zh: str
    en: str


class SchedulePublic(BaseModel):
    id: int
    event_id: int
    meetings: list[MeetingPublic]
    objective: float = Field(description="total score of the meetings (with the coverage bonus, if asked)")
    bound: float = Field(description="no plan of this event scores more (LP duality over every pair)")
    gap: float = Field(description="(bound - objective) / bound")
    status: str
    solver: str
    model_version: str | None
    left_out: list[LeftOut]
    unmet_wants: list[dict[str, Any]]
    stats: dict[str, Any]
    stale: bool = Field(default=False, description="participants changed since this plan was made")
    created_at: datetime


class OutcomeCreate(StrictModel):
    outcome: Outcome
    amount: Money | None = Field(default=None, description="CNY, with outcome 'deal' only")
    note: Annotated[str, Field(max_length=2000)] | None = None


class AgendaItem(BaseModel):
    slot: int
    start: str
    end: str
    table: int
    meeting_id: int
    counterpart_participant_id: int
    counterpart: str | None
    counterpart_kind: str | None
    score: float
    summary: str


class AgendaPublic(BaseModel):
    participant: ParticipantPublic
    event: EventPublic
    items: list[AgendaItem]
    subject: str
    text: str = Field(description="the bilingual email's plain text")


class AgendaSendReport(BaseModel):
    sent: int
    skipped: list[dict[str, Any]]
    failed: list[dict[str, Any]]
