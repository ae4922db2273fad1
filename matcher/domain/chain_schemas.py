"""API shapes of industry-chain maps (产业链图谱): a chain of links (上游 -> 中游 -> 下游), the records placed on each
link, the gaps and who could fill them (招商信息库), and officers' placement decisions. Types only; the rules a
schema cannot state (unique keys, references, no cycle) are matcher/chains/rules.py's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StrictFloat, field_validator, model_validator

from matcher.domain.event_schemas import RowId, count
from matcher.domain.schemas import Strict, Text, _omittable
from matcher.domain.taxonomy import default_taxonomy
from matcher.domain.text import ShortText, Title

LinksPerRecord = count(1, 10)
GapThreshold = count(0, 100_000)
ChainStage = Literal["upstream", "midstream", "downstream"]
RecordType = Literal["enterprise", "need", "resource"]
Decision = Literal["pinned", "excluded"]
LinkKey = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the link's key in this chain (letters, digits, _.-)"
    ),
]


def _bilingual(data: Any) -> Any:
    """`name` may be given as {"zh": .., "en": ..} or one string (Chinese), for name_zh / name_en."""
    if isinstance(data, dict) and "name" in data:
        data = dict(data)
        name = data.pop("name")
        if isinstance(name, dict):
            data.setdefault("name_zh", name.get("zh"))
            data.setdefault("name_en", name.get("en", ""))
        else:
            data.setdefault("name_zh", name)
    return data


# rules across the links, stated in words (no JSON schema compares the items of a list): checked by the store,
# 422 naming the link at fault
LINKS_RULE = (
    "the chain's links, upstream to downstream: keys are unique (a link without one is l1, l2 ... by its position), "
    "`feeds` and `upstream` name keys of these links, and what feeds what forms no cycle, a link feeding itself "
    "included (422 naming the link otherwise)"
)


class LinkIn(Strict):
    key: LinkKey | None = Field(
        default=None, description="unique in the chain; default: l1, l2 ... by position"
    )
    name_zh: Title
    name_en: ShortText = ""
    description: Text = ""
    stage: ChainStage | None = Field(default=None, description="default: from the link's place in the chain")
    feeds: list[LinkKey] = Field(
        default_factory=list, max_length=200, description="keys of the chain's links this one supplies"
    )
    upstream: list[LinkKey] = Field(
        default_factory=list, max_length=200, description="keys of the chain's links that supply this one"
    )
    industries: list[ShortText] = Field(default_factory=list, max_length=50)
    keywords: list[ShortText] = Field(default_factory=list, max_length=100)

    @field_validator("industries")
    @classmethod
    def _industries(cls, v: list[str]) -> list[str]:
        """Taxonomy tags in either language, as canonical tags (unknown ones kept as given)."""
        return default_taxonomy().normalize_tags(v)[0]

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        return _bilingual(data)


class ChainSettings(Strict):
    shared: StrictBool = Field(
        default=False, description="opt into relay incubation: incubators see the links"
    )
    min_score: StrictFloat = Field(default=0.3, ge=0, le=1, description="least score to sit on a link")
    max_links_per_record: LinksPerRecord = 2
    gap_threshold: GapThreshold = Field(default=3, description="fewer park enterprises: a gap")


class ChainCreate(ChainSettings):
    name_zh: Title
    name_en: ShortText = ""
    description: Text = ""
    links: list[LinkIn] = Field(min_length=1, max_length=300, description=LINKS_RULE)

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        return _bilingual(data)


class ChainUpdate(Strict):
    """PATCH body: only the fields given change (none of them may be null)."""

    name_zh: Title = _omittable()
    name_en: ShortText = _omittable()
    description: Text = _omittable()
    shared: StrictBool = _omittable()
    min_score: Annotated[StrictFloat, Field(ge=0, le=1)] = _omittable()
    max_links_per_record: LinksPerRecord = _omittable()
    gap_threshold: GapThreshold = _omittable()
    links: Annotated[list[LinkIn], Field(min_length=1, max_length=300)] = Field(
        default=None,
        description="the whole new set; links keep their key's id; " + LINKS_RULE,
        json_schema_extra=lambda schema: schema.pop("default", None),  # type: ignore[misc]
    )


class PlacedRecord(BaseModel):
    id: int
    name: str | None
    kind: str | None = None
    enterprise_id: int | None = None
    tier: str | None = None
    score: float
    source: str
    decision: str | None = None
    placement_id: int
    summary: str | None = None
    explanation: dict[str, Any] | None = None


class Candidate(BaseModel):
    """An outside enterprise or resource that could fill a gap: another tenant's public record, or a prospect."""

    type: Literal["enterprise", "resource"]
    id: int
    name: str
    kind: str | None = None
    origin: Literal["prospect", "other_tenant"]
    graduating: bool = False
    score: float
    explanation: dict[str, Any]


class Gap(BaseModel):
    link_id: int
    key: str
    name_zh: str
    name_en: str
    rank: int
    enterprises: int
    needs: int
    resources: int
    zh: str
    en: str
    candidates: dict[str, list[Candidate]] = Field(description="enterprises and resources that could fill it")


class LinkPublic(BaseModel):
    id: int
    key: str
    name_zh: str
    name_en: str
    description: str
    stage: str | None
    depth: int = Field(
        description="0 for a link nothing feeds, else one more than the deepest link feeding it"
    )
    feeds: list[str]
    industries: list[str]
    keywords: list[str]
    counts: dict[str, int]
    enterprises: list[PlacedRecord]
    resources: list[PlacedRecord]
    needs: list[PlacedRecord]
    prospects: list[PlacedRecord]
    gap: bool
    gaps: list[Gap] = Field(
        default_factory=list, description="this link's entry among the chain's gaps (empty when it is none)"
    )


class ChainPublic(BaseModel):
    id: int
    name_zh: str
    name_en: str
    description: str
    shared: bool
    min_score: float
    max_links_per_record: int
    gap_threshold: int
    placed_at: datetime | None
    placement_stats: dict[str, Any]
    stale_records: int = Field(default=0, description="records changed since the last placement")
    links: list[LinkPublic]
    gaps: list[Gap]
    created_at: datetime
    updated_at: datetime


class ChainSummary(BaseModel):
    id: int
    name_zh: str
    name_en: str
    shared: bool
    links: int
    placed_at: datetime | None
    created_at: datetime


class ChainsPublic(BaseModel):
    data: list[ChainSummary]
    count: int


class PlacementDecision(Strict):
    link_key: LinkKey
    record_type: RecordType
    record_id: RowId
    decision: Decision = Field(
        description="pinned: on this link whatever the score; excluded: never placed there"
    )
    reason: Annotated[str, Field(max_length=500)] | None = None


class PlacementPublic(BaseModel):
    id: int
    link_id: int
    link_key: str
    record_type: str
    record_id: int
    score: float
    source: str
    decision: str | None
    reason: str | None
    explanation: dict[str, Any]


class PlacementRun(BaseModel):
    chain_id: int
    placed_at: datetime
    stats: dict[str, Any]
