"""API schemas (requests and responses), kept apart from the tables.

Request models forbid unknown and server-owned fields (id, tenant, timestamps); per-kind resource details
are validated by their own models. Naming follows XCreate / XUpdate / XPublic / XsPublic."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StringConstraints,
    field_validator,
    model_validator,
)

from matcher.domain.spellings import (
    STAGE_SYNONYMS,
    TRANSFER_SYNONYMS,
    OrOneString,
    OrSynonym,
    names_pattern,
    normalize_stage,
    normalize_transfer_mode,
    split_list,
    synonym_pattern,
    values_pattern,
)
from matcher.domain.taxonomy import default_taxonomy
from matcher.domain.text import NUMBER_ONLY, Email, ExternalId, IsoDate, SchemaOf, ShortText, Title

ResourceKind = Literal["result", "scenario", "fund", "incubator"]
RESOURCE_KINDS: tuple[str, ...] = ("result", "scenario", "fund", "incubator")
Visibility = Literal["public", "private"]
Stage = Literal["seed", "startup", "growth", "mature"]
Tier = Literal["prospect", "incubating", "key_account"]
TransferMode = Literal["transfer", "license", "equity", "co-development"]
Language = Literal["zh", "en"]

MAX_TEXT = 20_000  # characters in a description; bodies are also capped in bytes by the API

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
# a record id in a body: a JSON integer (5.0 counts, as in JSON Schema; true or "1" would name record 1), within
# 32 bits as ids are on every store (a larger one names no row, and the bound is exact in the document's JSON)
Id = Annotated[int, Field(ge=1, le=2**31 - 1), NUMBER_ONLY]
Trl = Annotated[int, Field(ge=1, le=9), NUMBER_ONLY]  # technology readiness level
Money = Annotated[StrictFloat, Field(ge=0, le=1e13)]  # CNY: a JSON number (false or "1" is not one)


# a list also taken as one string of names, or null (no names); a stage or a transfer mode also as a synonym
def _names(most: int) -> Any:
    return Annotated[list[ShortText], Field(max_length=most), OrOneString(names_pattern(most))]


Industries = _names(50)
_StageValue = Annotated[Stage, OrSynonym(synonym_pattern(STAGE_SYNONYMS))]
_TransferValue = Annotated[TransferMode, OrSynonym(synonym_pattern(TRANSFER_SYNONYMS))]
Stages = Annotated[list[_StageValue], OrOneString(values_pattern(STAGE_SYNONYMS, ignore_case=True))]
TransferModes = Annotated[
    list[_TransferValue], OrOneString(values_pattern(TRANSFER_SYNONYMS, ignore_case=True))
]
Kinds = Annotated[list[ResourceKind], OrOneString(values_pattern(RESOURCE_KINDS, ignore_case=False))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------- per-kind resource details


class ResultDetails(Strict):
    """科技成果: a research result offered for transfer."""

    holder: ShortText | None = None
    trl: Trl | None = Field(default=None, description="technology readiness level 1-9")
    ip_status: ShortText | None = Field(default=None, description="e.g. granted, pending, know-how")
    patents: _names(200) | None = Field(default_factory=list)
    transfer_modes: TransferModes | None = Field(default_factory=list)
    price: Money | None = None

    @field_validator("patents", mode="before")
    @classmethod
    def _patents(cls, v: Any) -> Any:
        return split_list(v)

    @field_validator("transfer_modes", mode="before")
    @classmethod
    def _modes(cls, v: Any) -> Any:
        items = split_list(v)
        if not isinstance(items, list | tuple):
            return v  # not a list: the field's own validation rejects it with a 422
        return [normalize_transfer_mode(x) for x in items]


class ScenarioDetails(Strict):
    """应用场景: an application scenario opened by its owner."""

    owner: ShortText | None = None
    location: ShortText | None = None
    budget: Money | None = None
    deadline: IsoDate | None = Field(default=None, description="application deadline (ISO date)")
    validation_window: ShortText | None = None
    eligibility: Text | None = None


class FundDetails(Strict):
    """基金: a fund and the tickets it writes."""

    manager: ShortText | None = None
    stages: Stages | None = Field(default_factory=list)
    ticket_min: Money | None = Field(default=None, description="smallest ticket, CNY; not above ticket_max")
    ticket_max: Money | None = Field(default=None, description="largest ticket, CNY; not below ticket_min")
    sectors: _names(50) | None = Field(default_factory=list)
    park_affiliated: StrictBool | None = None

    @field_validator("stages", mode="before")
    @classmethod
    def _stages(cls, v: Any) -> Any:
        items = split_list(v)
        if not isinstance(items, list | tuple):
            return v  # not a list: the field's own validation rejects it with a 422
        return [normalize_stage(x) for x in items]

    @field_validator("sectors", mode="before")
    @classmethod
    def _sectors(cls, v: Any) -> Any:
        return _record_tags(v)

    @model_validator(mode="after")
    def _tickets(self) -> FundDetails:
        if self.ticket_min is not None and self.ticket_max is not None and self.ticket_min > self.ticket_max:
            raise ValueError(
                f"ticket_min ({self.ticket_min:g}) is greater than ticket_max ({self.ticket_max:g})"
            )
        return self


class IncubatorDetails(Strict):
    """孵化器、加速器、概念验证与共享实验室平台."""

    operator: ShortText | None = None
    facilities: _names(100) | None = Field(default_factory=list)
    capacity: Annotated[int, Field(ge=0, le=1_000_000), NUMBER_ONLY] | None = None
    tracks: _names(50) | None = Field(default_factory=list)
    admission: Text | None = None
    location: ShortText | None = None

    @field_validator("facilities", "tracks", mode="before")
    @classmethod
    def _lists(cls, v: Any) -> Any:
        return split_list(v)


DETAILS_MODELS: dict[str, type[Strict]] = {
    "result": ResultDetails,
    "scenario": ScenarioDetails,
    "fund": FundDetails,
    "incubator": IncubatorDetails,
}
# a PATCH's details are those of the stored resource's kind (some of its fields, merged with the stored ones)
AnyDetails = ResultDetails | ScenarioDetails | FundDetails | IncubatorDetails
PROVIDER_FIELD = {"result": "holder", "scenario": "owner", "fund": "manager", "incubator": "operator"}


def provider_of(kind: str, details: dict[str, Any]) -> str | None:
    value = details.get(PROVIDER_FIELD.get(kind, ""))
    return str(value) if value else None


# ---------------------------------------------------------------- shared validators


def _tags(v: Any) -> Any:
    items = split_list(v)
    if not isinstance(items, list | tuple) or not all(isinstance(x, str) for x in items):
        return v  # not a list of names: the field's own validation rejects it with a 422
    return default_taxonomy().normalize_tags(items)[0]


def _record_tags(v: Any) -> Any:
    """A record's tags, as _tags has them; a listed name is one line, as the document says (the field's own
    validation rejects one with a line break, which the tags' clean-up would otherwise make a space)."""
    if isinstance(v, list) and any(isinstance(x, str) and ("\r" in x or "\n" in x) for x in v):
        return v
    return _tags(v)


class _Tagged(Strict):
    @field_validator("industries", mode="before", check_fields=False)
    @classmethod
    def _industries(cls, v: Any) -> Any:
        return _record_tags(v)


def _omittable() -> Any:
    """A PATCH field that may be left out but not set to null (its column holds none): no null in its schema."""
    return Field(default=None, json_schema_extra=lambda schema: schema.pop("default", None))  # type: ignore[misc]


# ---------------------------------------------------------------- resources


class ResourceBase(_Tagged):
    title: Title
    description: Text = ""
    industries: Industries | None = Field(default_factory=list)
    region: ShortText | None = None
    language: Language | None = Field(
        default=None, description="zh or en; detected from the text when absent"
    )
    valid_until: IsoDate | None = None
    status: Literal["active", "paused", "closed"] = "active"
    visibility: Visibility = "public"
    external_id: ExternalId | None = Field(default=None, description="upsert key for imports")


class ResultCreate(ResourceBase):
    kind: Literal["result"]
    details: ResultDetails = Field(default_factory=ResultDetails)


class ScenarioCreate(ResourceBase):
    kind: Literal["scenario"]
    details: ScenarioDetails = Field(default_factory=ScenarioDetails)


class FundCreate(ResourceBase):
    kind: Literal["fund"]
    details: FundDetails = Field(default_factory=FundDetails)


class IncubatorCreate(ResourceBase):
    kind: Literal["incubator"]
    details: IncubatorDetails = Field(default_factory=IncubatorDetails)


ResourceCreate = Annotated[
    ResultCreate | ScenarioCreate | FundCreate | IncubatorCreate, Field(discriminator="kind")
]


class ResourceUpdate(_Tagged):
    """PATCH body: only the fields given change; `details` is merged and re-validated for the kind."""

    title: Title = _omittable()
    description: Text = _omittable()
    industries: Industries | None = None
    region: ShortText | None = None
    language: Language | None = None
    valid_until: IsoDate | None = None
    status: Literal["active", "paused", "closed"] = _omittable()
    visibility: Visibility = _omittable()
    external_id: ExternalId | None = None
    details: Annotated[dict[str, Any], SchemaOf(AnyDetails)] = _omittable()


class ResourcePublic(BaseModel):
    id: int
    kind: ResourceKind
    title: str
    description: str
    industries: list[str]
    unknown_industries: list[str] = Field(default_factory=list, description="tags not in the taxonomy")
    region: str | None
    language: str
    valid_until: date | None
    status: str
    visibility: str
    external_id: str | None
    provider: str | None
    details: dict[str, Any]
    tenant: str | None = Field(default=None, description="owning tenant; shown to that tenant only")
    created_at: datetime
    updated_at: datetime
    seq: int | None = Field(
        default=None,
        ge=0,
        exclude_if=lambda v: v is None,
        description="change-feed seq of the record's last write (of this write, in a write response): pass it "
        "as min_seq to read the record as written on any replica",
    )


class ResourcesPublic(BaseModel):
    data: list[ResourcePublic]
    count: int
    next_cursor: str | None = None


# ---------------------------------------------------------------- enterprises


class EnterpriseBase(_Tagged):
    name: Title
    description: Text = ""
    industries: Industries | None = Field(default_factory=list)
    region: ShortText | None = None
    stage: _StageValue | None = None
    tier: Tier | None = None
    size: Literal["micro", "small", "medium", "large"] | None = None
    email: Email | None = None
    digest_frequency: Literal["weekly", "biweekly", "off"] = "weekly"
    digest_kinds: list[ResourceKind] = Field(default_factory=list)
    language: Language = "zh"
    visibility: Visibility = "public"
    external_id: ExternalId | None = None

    @field_validator("stage", mode="before")
    @classmethod
    def _stage(cls, v: Any) -> Any:
        return normalize_stage(v)


class EnterpriseCreate(EnterpriseBase):
    pass


class EnterpriseUpdate(_Tagged):
    name: Title = _omittable()
    description: Text = _omittable()
    industries: Industries | None = None
    region: ShortText | None = None
    stage: _StageValue | None = None
    tier: Tier | None = None
    size: Literal["micro", "small", "medium", "large"] | None = None
    email: Email | None = None
    digest_frequency: Literal["weekly", "biweekly", "off"] = _omittable()
    digest_kinds: list[ResourceKind] | None = None
    language: Language | None = None
    visibility: Visibility = _omittable()
    external_id: ExternalId | None = None

    @field_validator("stage", mode="before")
    @classmethod
    def _stage(cls, v: Any) -> Any:
        return normalize_stage(v)


class EnterprisePublic(BaseModel):
    id: int
    name: str
    description: str
    industries: list[str]
    unknown_industries: list[str] = Field(default_factory=list)
    region: str | None
    stage: str | None
    tier: str | None
    size: str | None
    visibility: str
    external_id: str | None = None
    # contact and preferences: only for the owning tenant (None otherwise)
    email: str | None = None
    digest_frequency: str | None = None
    digest_kinds: list[str] | None = None
    language: str | None = None
    unsubscribed: bool | None = None
    tenant: str | None = None
    created_at: datetime
    updated_at: datetime
    seq: int | None = Field(
        default=None,
        ge=0,
        exclude_if=lambda v: v is None,
        description="change-feed seq of the record's last write (of this write, in a write response): pass it "
        "as min_seq to read the record as written on any replica",
    )


class EnterprisesPublic(BaseModel):
    data: list[EnterprisePublic]
    count: int
    next_cursor: str | None = None


# ---------------------------------------------------------------- needs


class NeedBase(_Tagged):
    enterprise_id: Id
    title: Title
    description: Text = ""
    kinds: Kinds | None = Field(default_factory=list, description="kinds sought; empty = all")
    industries: Industries | None = Field(default_factory=list)
    amount: Money | None = Field(default=None, description="budget or amount sought, CNY")
    region: ShortText | None = None
    deadline: IsoDate | None = None
    trl_min: Trl | None = Field(default=None, description="lowest TRL acceptable for results")
    status: Literal["open", "matched", "closed"] = "open"
    visibility: Visibility = "public"

    @field_validator("kinds", mode="before")
    @classmethod
    def _kinds(cls, v: Any) -> Any:
        return split_list(v)


class NeedCreate(NeedBase):
    pass


class NeedUpdate(_Tagged):
    title: Title = _omittable()
    description: Text = _omittable()
    kinds: list[ResourceKind] | None = None
    industries: Industries | None = None
    amount: Money | None = None
    region: ShortText | None = None
    deadline: IsoDate | None = None
    trl_min: Trl | None = None
    status: Literal["open", "matched", "closed"] = _omittable()
    visibility: Visibility = _omittable()


class NeedPublic(BaseModel):
    id: int
    # None when the caller may not see the need's enterprise (a public need of a private enterprise)
    enterprise_id: int | None
    title: str
    description: str
    kinds: list[str]
    industries: list[str]
    unknown_industries: list[str] = Field(default_factory=list)
    amount: float | None
    region: str | None
    deadline: date | None
    trl_min: int | None
    status: str
    visibility: str
    tenant: str | None = None
    created_at: datetime
    updated_at: datetime
    seq: int | None = Field(
        default=None,
        ge=0,
        exclude_if=lambda v: v is None,
        description="change-feed seq of the record's last write (of this write, in a write response): pass it "
        "as min_seq to read the record as written on any replica",
    )


class NeedsPublic(BaseModel):
    data: list[NeedPublic]
    count: int
    next_cursor: str | None = None


# ---------------------------------------------------------------- keys


class ApiKeyCreate(Strict):
    tenant: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    role: Literal["admin", "officer", "platform"]
    name: ShortText = ""


class ApiKeyCreated(BaseModel):
    id: int
    tenant: str
    role: str
    key: str = Field(description="shown once; only its hash is stored")
