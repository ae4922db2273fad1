"""Tables of what a park office runs besides its records: docking events and their meeting plans, industry-chain
maps and where records sit on them, the cultivation tiers' transitions and policies, and graduations passed on
to parks (relay incubation). Persistence only; the rules live in matcher/events, matcher/chains,
matcher/cultivation and matcher/relay.

Rows name enterprises, needs and resources by id without a foreign key (as the audit trail does): a record
deleted later leaves the event, the map or the history readable, and readers skip what is gone."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from matcher.domain.tables import utcnow


def _json(default: Any = list) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


# ---------------------------------------------------------------- docking events (科技成果供需对接活动)


class DockingEvent(SQLModel, table=True):
    __tablename__ = "docking_event"
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    title: str = Field(max_length=300)
    date: date
    location: str | None = Field(default=None, max_length=300)
    slots: list[Any] = _json()  # [{"start": "09:00", "end": "09:20"}, ...] in time order
    tables: int
    max_meetings_per_participant: int
    min_score: float = 0.0  # pairs scoring at or below this do not meet (unless wanted)
    status: str = "open"  # open | scheduled
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class EventParticipant(SQLModel, table=True):
    __tablename__ = "event_participant"
    __table_args__ = (
        UniqueConstraint("event_id", "enterprise_id"),
        UniqueConstraint("event_id", "resource_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="docking_event.id", index=True)
    tenant_id: str = Field(max_length=64, index=True)
    side: str = Field(max_length=8)  # demand (an enterprise) | supply (a resource's holder)
    enterprise_id: int | None = None
    resource_id: int | None = None
    avoid: list[int] = _json()  # participant ids this one does not want to meet
    want: list[int] = _json()  # participant ids this one asked to meet
    max_meetings: int | None = None  # this participant's own cap (the event's when None)
    email: str | None = Field(default=None, max_length=320)  # where its agenda goes
    created_at: datetime = Field(default_factory=utcnow)


class EventSchedule(SQLModel, table=True):
    """One run of the scheduler; the latest is the event's plan."""

    __tablename__ = "event_schedule"
    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="docking_event.id", index=True)
    tenant_id: str = Field(max_length=64, index=True)
    objective: float
    bound: float
    gap: float
    status: str = Field(max_length=16)  # optimal | time_limit
    solver: str = Field(max_length=200)
    model_version: str | None = Field(default=None, max_length=200)
    stats: dict[str, Any] = _json(dict)  # timings, candidates, rounds, participants
    left_out: list[Any] = _json()  # [{participant_id, side, reason, zh, en}]
    unmet_wants: list[Any] = _json()
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class EventMeeting(SQLModel, table=True):
    __tablename__ = "event_meeting"
    __table_args__ = (Index("ix_event_meeting_schedule_slot", "schedule_id", "slot"),)
    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int = Field(foreign_key="event_schedule.id")
    event_id: int = Field(index=True)
    tenant_id: str = Field(max_length=64)
    slot: int  # index in the event's slots
    table_no: int  # table number, 1 ..
    demand_participant_id: int
    supply_participant_id: int
    enterprise_id: int
    resource_id: int
    need_id: int | None = None  # the enterprise's need that made the pair's score, if one did
    score: float
    wanted: bool = False
    explanation: dict[str, Any] = _json(dict)
    request_id: str = Field(max_length=64, index=True)  # its impression's, for feedback
    outcome: str | None = Field(
        default=None, max_length=16
    )  # met | follow_up | deal | no_show | not_relevant
    outcome_note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    outcome_amount: float | None = None
    outcome_at: datetime | None = None
    outcome_by: int | None = None


# ---------------------------------------------------------------- industry chains (产业链图谱)


class IndustryChain(SQLModel, table=True):
    __tablename__ = "industry_chain"
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    name_zh: str = Field(max_length=300)
    name_en: str = Field(default="", max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    shared: bool = False  # parks' chains opted into relay incubation: incubators see their links
    min_score: float = 0.3  # a record sits on a link when it scores at least this
    max_links_per_record: int = 2
    gap_threshold: int = 3  # a link with fewer park enterprises than this is a gap
    placed_at: datetime | None = None
    placement_stats: dict[str, Any] = _json(dict)
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ChainLink(SQLModel, table=True):
    __tablename__ = "chain_link"
    __table_args__ = (UniqueConstraint("chain_id", "key"),)
    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(foreign_key="industry_chain.id", index=True)
    tenant_id: str = Field(max_length=64)
    key: str = Field(max_length=64)
    name_zh: str = Field(max_length=300)
    name_en: str = Field(default="", max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    stage: str | None = Field(default=None, max_length=16)  # upstream | midstream | downstream
    feeds: list[str] = _json()  # keys of the links this one supplies
    industries: list[str] = _json()
    keywords: list[str] = _json()
    position: int = 0


class ChainPlacement(SQLModel, table=True):
    """A record on a link: placed by the matcher (scored, explained) or decided by an officer (kept across
    re-placements: `pinned` puts it there whatever the score, `excluded` keeps the matcher from putting it there)."""

    __tablename__ = "chain_placement"
    __table_args__ = (
        UniqueConstraint("link_id", "record_type", "record_id"),
        Index("ix_chain_placement_chain_record", "chain_id", "record_type", "record_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    chain_id: int = Field(foreign_key="industry_chain.id", index=True)
    link_id: int = Field(foreign_key="chain_link.id")
    tenant_id: str = Field(max_length=64)
    record_type: str = Field(max_length=16)  # enterprise | need | resource
    record_id: int
    score: float = 0.0
    explanation: dict[str, Any] = _json(dict)
    source: str = Field(default="auto", max_length=8)  # auto | officer
    decision: str | None = Field(default=None, max_length=8)  # pinned | excluded (officer's)
    reason: str | None = Field(default=None, max_length=500)
    decided_by: int | None = None
    decided_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------- cultivation (摸底 -> 入库培育 -> 精准服务)


class TierTransition(SQLModel, table=True):
    __tablename__ = "tier_transition"
    __table_args__ = (Index("ix_tier_transition_tenant_enterprise", "tenant_id", "enterprise_id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64)
    enterprise_id: int
    from_tier: str | None = Field(default=None, max_length=16)
    to_tier: str | None = Field(default=None, max_length=16)
    reason: str | None = Field(default=None, max_length=1000)
    source: str = Field(default="api", max_length=16)  # api | create | update | import
    actor: str = Field(max_length=64)
    actor_key_id: int | None = None
    at: datetime = Field(default_factory=utcnow, index=True)


class TierPolicy(SQLModel, table=True):
    __tablename__ = "tier_policy"
    __table_args__ = (UniqueConstraint("tenant_id", "tier"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64, index=True)
    tier: str = Field(max_length=16)
    digest_frequency: str = "weekly"  # weekly | biweekly | off
    digest_kinds: list[str] = _json()
    follow_up: bool = False  # an officer follows up each match of at least follow_up_min_score
    follow_up_min_score: float = 0.5
    follow_up_days: int = 14  # matches served within this many days are on the follow-up list
    updated_by: int | None = None
    updated_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------- relay incubation (接续孵化)


class Graduation(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("enterprise_id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(max_length=64, index=True)
    enterprise_id: int
    note: str | None = Field(default=None, max_length=2000)
    expected: date | None = None  # when it leaves the incubator
    marked_by: int | None = None
    marked_at: datetime = Field(default_factory=utcnow)
