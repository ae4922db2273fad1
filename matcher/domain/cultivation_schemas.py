"""API shapes of the cultivation pipeline (摸底 -> 入库培育 -> 精准服务): tier moves and their history, the
policy of each tier, the funnel, and officers' follow-up list."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictFloat

from matcher.domain.event_schemas import count
from matcher.domain.schemas import ResourceKind, Strict, Tier

Frequency = Literal["weekly", "biweekly", "off"]


class TierMove(Strict):
    tier: Tier | None = Field(
        description="prospect (摸底), incubating (入库培育), key_account (精准服务); null: out"
    )
    reason: Annotated[str, Field(max_length=1000)] | None = Field(
        default=None, description="why, for the record"
    )


class TransitionPublic(BaseModel):
    id: int
    enterprise_id: int
    from_tier: str | None
    to_tier: str | None
    reason: str | None
    source: str = Field(description="api (a move), create, update (PATCH), import")
    actor: str
    actor_key_id: int | None
    at: datetime


class TransitionsPublic(BaseModel):
    data: list[TransitionPublic]
    count: int


class PolicyIn(Strict):
    digest_frequency: Frequency = "weekly"
    digest_kinds: list[ResourceKind] = Field(default_factory=list, description="empty: every kind")
    follow_up: StrictBool = Field(default=False, description="an officer follows up each good match")
    follow_up_min_score: StrictFloat = Field(default=0.5, ge=0, le=1)
    follow_up_days: count(1, 365) = 14  # type: ignore[valid-type]
    apply_now: StrictBool = Field(
        default=True, description="also set the digest preferences of the enterprises in the tier now"
    )


class PolicyPublic(BaseModel):
    tier: str
    zh: str
    en: str
    defined: bool = Field(description="false: no policy; enterprises keep their own digest preferences")
    digest_frequency: str | None = None
    digest_kinds: list[str] = Field(default_factory=list)
    follow_up: bool = False
    follow_up_min_score: float | None = None
    follow_up_days: int | None = None
    applied_to: int | None = Field(
        default=None, description="enterprises whose preferences were set just now"
    )
    updated_at: datetime | None = None


class PoliciesPublic(BaseModel):
    data: list[PolicyPublic]


class FunnelPublic(BaseModel):
    tiers: dict[str, int] = Field(description="enterprises per tier now (none: outside the pipeline)")
    labels: dict[str, dict[str, str]]
    moves: dict[str, int] = Field(description="'from->to': moves since `since`")
    since: datetime
    chain_id: int | None = None
    links: list[dict[str, Any]] = Field(
        default_factory=list, description="per link of the chain: enterprises per tier"
    )


class FollowUp(BaseModel):
    enterprise_id: int
    enterprise: str
    tier: str
    resource_id: int
    resource: str | None
    kind: str | None
    score: float
    request_id: str
    need_id: int | None
    served_at: datetime


class FollowUpsPublic(BaseModel):
    data: list[FollowUp]
    count: int
