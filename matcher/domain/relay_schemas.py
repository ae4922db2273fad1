"""API shapes of relay incubation (接续孵化): an incubator marks an enterprise as graduating; the chains and links of
parks that opted into sharing which it fits; and, for a park, the graduates that fit its chains."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from matcher.domain.schemas import Strict


class GraduationCreate(Strict):
    note: Annotated[str, Field(max_length=2000)] | None = None
    expected: date | None = Field(default=None, description="when it leaves the incubator")


class GraduationPublic(BaseModel):
    id: int
    enterprise_id: int
    enterprise: str | None
    note: str | None
    expected: date | None
    marked_by: int | None
    marked_at: datetime


class GraduationsPublic(BaseModel):
    data: list[GraduationPublic]
    count: int


class LinkFit(BaseModel):
    link_id: int
    key: str
    name_zh: str
    name_en: str
    stage: str | None
    score: float
    fits: bool = Field(description="at least the chain's min_score")
    gap: bool = Field(description="the park has fewer enterprises on this link than its gap threshold")
    park_enterprises: int
    explanation: dict[str, Any]


class ChainFit(BaseModel):
    chain_id: int
    park: str = Field(description="the tenant whose chain it is")
    name_zh: str
    name_en: str
    best: float
    links: list[LinkFit]


class RelayPublic(BaseModel):
    enterprise_id: int
    graduating: bool
    chains: list[ChainFit] = Field(description="shared chains, best fit first")
    message: str | None = None


class GraduateFit(BaseModel):
    enterprise_id: int
    name: str
    incubator: str = Field(description="the tenant that marked it")
    expected: date | None
    best: float
    links: list[LinkFit]


class GraduatesPublic(BaseModel):
    data: list[GraduateFit]
    count: int
