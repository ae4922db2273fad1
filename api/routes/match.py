"""Matching endpoints: need / enterprise / free text -> resources; resource -> enterprises and needs; search."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    field_validator,
    model_validator,
)
from sqlmodel import Session

from api.deps import CallerDep, StateDep, get_matcher
from api.feed import BEHIND_RESPONSES, wait_min_seq
from api.setting_bounds import setting_bound
from api.state import AppState
from matcher.domain.schemas import (
    EnterprisePublic,
    Id,
    NeedPublic,
    ResourceKind,
    ResourcePublic,
    Trl,
    _tags,
)
from matcher.domain.spellings import OrOneString, split_list
from matcher.domain.tables import Enterprise, Need, Resource
from matcher.domain.text import NUMBER_ONLY
from matcher.domain.visibility import visible_to
from matcher.errors import ValidationFailed
from matcher.indexing.demand_keys import DEMAND_NEED, split_demand_key
from matcher.matching.engine import MatchEngine
from matcher.matching.pipeline import MatchOutcome
from matcher.matching.query import MatchQuery
from matcher.outcomes.impressions import log_impressions
from matcher.settings import Settings
from matcher.store.keys import Caller
from matcher.store.public import to_public_enterprise, to_public_need, to_public_resource
from matcher.store.queries import by_ids

# every match reads the indexes: `min_seq` waits until this replica has applied a write (api/feed.py)
router = APIRouter(tags=["match"], responses=BEHIND_RESPONSES, dependencies=[Depends(wait_min_seq)])
MatcherDep = Annotated[MatchEngine, Depends(get_matcher)]


class MatchFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    industries: Annotated[list[str], OrOneString(None)] | None = Field(
        default=None, description="any of these tags (taxonomy-normalised)"
    )
    region: str | None = None
    stage: Literal["seed", "startup", "growth", "mature"] | None = Field(
        default=None, description="fund stage fit"
    )
    amount: StrictFloat | None = Field(
        default=None, ge=0, description="CNY; funds whose ticket range excludes it drop"
    )
    trl_min: Trl | None = None
    trl_max: Trl | None = None
    include_inactive: StrictBool = False

    @field_validator("industries", mode="before")
    @classmethod
    def _industries(cls, v: Any) -> Any:
        return None if v is None else _tags(v)


# the list's length: at most MATCHER_MAX_K, which the document states as this app's maximum
K = Annotated[int, Field(ge=1, json_schema_extra=setting_bound("maximum", "max_k")), NUMBER_ONLY]
QueryText = Annotated[str, Field(json_schema_extra=setting_bound("maxLength", "max_query_chars"))]
# what to match, as the validator below has it: text that is not blank, a need or an enterprise, and not both of
# the last two (null is as good as absent)
_INTEGER = {"type": "integer"}
_SUBJECT_RULE = {
    "anyOf": [
        {"required": ["text"], "properties": {"text": {"type": "string", "pattern": r"\S"}}},
        {"required": ["need_id"], "properties": {"need_id": _INTEGER}},
        {"required": ["enterprise_id"], "properties": {"enterprise_id": _INTEGER}},
    ],
    "not": {
        "required": ["need_id", "enterprise_id"],
        "properties": {"need_id": _INTEGER, "enterprise_id": _INTEGER},
    },
}


class MatchRequest(BaseModel):
    """What to match: `text` (not blank), `need_id` or `enterprise_id`; not both of the last two."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_SUBJECT_RULE)
    text: QueryText | None = Field(
        default=None, description="free text (Chinese or English), at most MATCHER_MAX_QUERY_CHARS"
    )
    need_id: Id | None = None
    enterprise_id: Id | None = None
    kinds: list[ResourceKind] = Field(default_factory=list, description="empty = all kinds")
    filters: MatchFilters = Field(default_factory=MatchFilters)
    k: K = Field(default=10, description="at most MATCHER_MAX_K")
    min_score: StrictFloat | None = Field(default=None, ge=0, le=1)
    dense_weight: StrictFloat | None = Field(
        default=None, ge=0, le=1, description="fusion weight of the dense side"
    )
    per_provider: Annotated[int, Field(ge=0, le=100), NUMBER_ONLY] | None = Field(
        default=None, description="0 = no diversity limit"
    )
    bundle: StrictBool = Field(default=False, description="the best `per_kind` of each kind")
    per_kind: Annotated[int, Field(ge=1, le=20), NUMBER_ONLY] = 3
    explain: StrictBool = True

    @model_validator(mode="after")
    def _one_subject(self) -> MatchRequest:
        given = [n for n in ("need_id", "enterprise_id") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError("give need_id or enterprise_id, not both")
        if not given and not (self.text and self.text.strip()):
            raise ValueError("give one of text, need_id or enterprise_id")
        return self


def check_limits(settings: Settings, *, k: int, text: str | None = None, text_field: str = "text") -> None:
    """The request limits the settings own (MATCHER_MAX_K, MATCHER_MAX_QUERY_CHARS), checked per request and
    refused as a 422 problem of the same shape as the schema's own validation errors."""
    errors = []
    if k > settings.max_k:
        errors.append(
            {
                "field": "k",
                "message": f"Input should be less than or equal to {settings.max_k}",
                "type": "less_than_equal",
            }
        )
    if text is not None and len(text) > settings.max_query_chars:
        errors.append(
            {
                "field": text_field,
                "message": f"String should have at most {settings.max_query_chars} characters "
                f"(got {len(text)})",
                "type": "string_too_long",
            }
        )
    if errors:
        detail = f"{errors[0]['field']}: {errors[0]['message']}"
        if len(errors) > 1:
            detail += f" (and {len(errors) - 1} more)"
        raise ValidationFailed(detail, errors=errors)


class Match(BaseModel):
    rank: int
    score: float
    resource: ResourcePublic
    explanation: dict[str, Any] | None = None


class MatchResponse(BaseModel):
    request_id: str
    matches: list[Match]
    count: int
    message: str | None = None
    model_version: str
    # set when this list interleaves a ranker on trial with the one in service: the order is the
    # interleaving's, the scores stay those of `model_version` (docs/learning.md, "Interleaved trials")
    interleaved_with: str | None = None
    timings_ms: dict[str, float]


class DemandMatch(BaseModel):
    rank: int
    score: float
    type: Literal["need", "enterprise"]
    enterprise: EnterprisePublic | None = None
    need: NeedPublic | None = None
    explanation: dict[str, Any] | None = None


class DemandMatchResponse(BaseModel):
    request_id: str
    resource_id: int
    matches: list[DemandMatch]
    count: int
    message: str | None = None
    model_version: str


def respond(
    state: AppState, engine: MatchEngine, q: MatchQuery, caller: Caller, *, log: bool = True
) -> MatchResponse:
    """Run the query for the caller's tenant and answer the ranked resources still there. The impressions are
    committed before the response leaves, so that feedback on any listed match is accepted right away (`log`
    False: a list nobody is shown, such as an export, logs none)."""
    outcome = engine.match(q, tenant=caller.tenant)
    if state.metrics is not None:
        state.metrics.observe_match(outcome, "forward")
    if outcome.candidates and log:
        log_impressions(state.db, outcome, caller.tenant)
    ids = [c.id for c in outcome.candidates]
    with Session(state.db) as session:
        rows = by_ids(session, Resource, ids)
    matches = []
    for c in outcome.candidates:
        row = rows.get(c.id)
        if row is None:  # deleted between retrieval and response
            continue
        matches.append(
            Match(
                rank=len(matches) + 1,
                score=round(c.score, 4),
                resource=to_public_resource(row, caller),
                explanation=outcome.explanations.get(c.id),
            )
        )
    return MatchResponse(
        request_id=outcome.request_id,
        matches=matches,
        count=len(matches),
        message=None if matches else "no resource fits well enough (try fewer filters or a lower min_score)",
        model_version=outcome.model_version,
        interleaved_with=outcome.trial_version,
        timings_ms=outcome.timings_ms,
    )


@router.post("/match", response_model=MatchResponse)
def match(body: MatchRequest, state: StateDep, caller: CallerDep, engine: MatcherDep) -> MatchResponse:
    """Rank resources for a need, an enterprise, or free text (ranked, filtered, explained)."""
    check_limits(state.settings, k=body.k, text=body.text)
    q = MatchQuery(
        text=body.text,
        need_id=body.need_id,
        enterprise_id=body.enterprise_id,
        kinds=tuple(body.kinds),
        filters=body.filters.model_dump(exclude_none=True),
        k=body.k,
        min_score=body.min_score,
        dense_weight=body.dense_weight,
        per_provider=body.per_provider,
        bundle=body.bundle,
        per_kind=body.per_kind,
        explain=body.explain,
    )
    return respond(state, engine, q, caller)


KindsQuery = Annotated[list[ResourceKind] | None, Query(description="repeat for several kinds")]
KQuery = Annotated[
    int, Query(ge=1, description="at most MATCHER_MAX_K", json_schema_extra=setting_bound("maximum", "max_k"))
]
MinScoreQuery = Annotated[float | None, Query(ge=0, le=1)]


def _subject_matches(
    state: AppState,
    caller: Caller,
    engine: MatchEngine,
    k: int,
    kinds: list[ResourceKind] | None,
    min_score: float | None,
    bundle: bool,
    **subject: int,
) -> MatchResponse:
    """The body of the need and enterprise match routes; `subject` is need_id=... or enterprise_id=...."""
    check_limits(state.settings, k=k)
    q = MatchQuery(**subject, kinds=tuple(kinds or ()), k=k, min_score=min_score, bundle=bundle)
    return respond(state, engine, q, caller)


@router.get("/needs/{need_id}/matches", response_model=MatchResponse)
def need_matches(
    need_id: int,
    state: StateDep,
    caller: CallerDep,
    engine: MatcherDep,
    k: KQuery = 10,
    kinds: KindsQuery = None,
    min_score: MinScoreQuery = None,
    bundle: bool = False,
) -> MatchResponse:
    """The resources that fit one need (its kinds, industries, amount, TRL and region)."""
    return _subject_matches(state, caller, engine, k, kinds, min_score, bundle, need_id=need_id)


@router.get("/enterprises/{enterprise_id}/matches", response_model=MatchResponse)
def enterprise_matches(
    enterprise_id: int,
    state: StateDep,
    caller: CallerDep,
    engine: MatcherDep,
    k: KQuery = 10,
    kinds: KindsQuery = None,
    min_score: MinScoreQuery = None,
    bundle: bool = False,
) -> MatchResponse:
    """The resources that fit an enterprise's profile."""
    return _subject_matches(state, caller, engine, k, kinds, min_score, bundle, enterprise_id=enterprise_id)


@router.get("/search", response_model=MatchResponse)
def search(
    state: StateDep,
    caller: CallerDep,
    engine: MatcherDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            description="free text, at most MATCHER_MAX_QUERY_CHARS",
            json_schema_extra=setting_bound("maxLength", "max_query_chars"),
        ),
    ],
    kinds: KindsQuery = None,
    industries: Annotated[list[str] | None, Query()] = None,
    region: str | None = None,
    k: KQuery = 20,
    min_score: MinScoreQuery = None,
    include_inactive: bool = False,
) -> MatchResponse:
    """Officers' search: free text over all kinds, with filters."""
    check_limits(state.settings, k=k, text=q, text_field="q")
    filters: dict[str, Any] = {"include_inactive": include_inactive}
    if industries:
        filters["industries"] = _tags([x for v in industries for x in split_list(v)])
    if region:
        filters["region"] = region
    mq = MatchQuery(
        text=q, kinds=tuple(kinds or ()), filters=filters, k=k, min_score=min_score, per_provider=0
    )
    return respond(state, engine, mq, caller)


def preferred_language(accept_language: str | None) -> Literal["zh", "en"] | None:
    """zh or en, whichever an Accept-Language header prefers (q-values honoured; zh-CN, en-GB count), or None
    when it names neither."""
    ranked: list[tuple[float, int, Literal["zh", "en"]]] = []
    for i, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary != "zh" and primary != "en":
            continue
        q = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
        if q > 0:
            ranked.append((-q, i, "zh" if primary == "zh" else "en"))
    return min(ranked)[2] if ranked else None


@router.get("/resources/{resource_id}/matches", response_model=DemandMatchResponse)
def resource_matches(
    resource_id: int,
    state: StateDep,
    caller: CallerDep,
    engine: MatcherDep,
    k: KQuery = 10,
    min_score: MinScoreQuery = None,
    include: Annotated[list[Literal["need", "enterprise"]] | None, Query()] = None,
    language: Annotated[
        Literal["zh", "en"] | None,
        Query(description="language of the explanations; default: Accept-Language, else the resource's own"),
    ] = None,
    accept_language: Annotated[str | None, Header(max_length=500)] = None,
) -> DemandMatchResponse:
    """For scenario-opening platforms: the enterprises and open needs a scenario, fund or incubator fits, each
    explained in the language asked (the `language` parameter, else Accept-Language, else the resource's)."""
    check_limits(state.settings, k=k)
    outcome = engine.reverse(
        resource_id,
        tenant=caller.tenant,
        k=k,
        min_score=min_score,
        include=tuple(include or ("need", "enterprise")),
        language=language or preferred_language(accept_language),
    )
    if state.metrics is not None:
        state.metrics.observe_match(outcome, "reverse")
    out = demand_matches(state, outcome, caller)
    return DemandMatchResponse(
        request_id=outcome.request_id,
        resource_id=resource_id,
        matches=out,
        count=len(out),
        message=None if out else "no enterprise or open need fits well enough",
        model_version=outcome.model_version,
    )


def demand_matches(state: AppState, outcome: MatchOutcome, caller: Caller) -> list[DemandMatch]:
    """Render a reverse match's candidates as the caller may see them. The engine filters the candidates
    themselves by visibility, not the enterprise behind each need: a public need of an enterprise the caller may
    not see is shown alone, without the enterprise or its id."""
    need_ids, ent_ids = [], []
    for c in outcome.candidates:
        typ, rid = split_demand_key(c.id)
        (need_ids if typ == DEMAND_NEED else ent_ids).append(rid)
    with Session(state.db) as session:
        needs = by_ids(session, Need, need_ids)
        ents = by_ids(session, Enterprise, [*ent_ids, *(n.enterprise_id for n in needs.values())])
    visible = {i: e for i, e in ents.items() if visible_to(e, caller.tenant)}
    out: list[DemandMatch] = []
    for c in outcome.candidates:
        typ, rid = split_demand_key(c.id)
        if typ == DEMAND_NEED:
            need = needs.get(rid)
            if need is None:  # deleted between retrieval and response
                continue
            ent = visible.get(need.enterprise_id)
        else:
            need, ent = None, visible.get(rid)
            if ent is None:  # deleted, or no longer visible, since retrieval
                continue
        out.append(
            DemandMatch(
                rank=len(out) + 1,
                score=round(c.score, 4),
                type="need" if need is not None else "enterprise",
                need=None if need is None else to_public_need(need, caller, ent),
                enterprise=None if ent is None else to_public_enterprise(ent, caller),
                explanation=outcome.explanations.get(c.id),
            )
        )
    return out
