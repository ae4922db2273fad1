"""What a forward match asks: the query (`MatchQuery`), resolved against the store into query text and the
structured ask (`build_ask`), the hard filters it puts on the resources (`resource_filter`), and the
pipeline plan they make (`match_plan`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date

from sqlalchemy.engine import Engine
from sqlmodel import Session

from embeddings.text import tokenize
from matcher.domain.generic_terms import query_terms
from matcher.domain.tables import Enterprise, Need
from matcher.domain.taxonomy import Taxonomy
from matcher.domain.visibility import visible_to
from matcher.errors import NotFound, ValidationFailed
from matcher.indexing.catalog import Filter
from matcher.indexing.indexer import Side
from matcher.matching.explain import resource_explainer
from matcher.matching.fit import Ask, fit_features
from matcher.matching.pipeline import Plan
from matcher.matching.retrieval import QueryVector
from matcher.settings import Settings
from matcher.store.curation import curated_for
from matcher.store.db import valid_id

Filters = dict[str, object]


@dataclass
class MatchQuery:
    """need / enterprise / free text -> resources; the fields below `exclude_ids` tune the stages per caller."""

    text: str | None = None
    need_id: int | None = None
    enterprise_id: int | None = None
    kinds: tuple[str, ...] = ()
    # industries, region, stage, amount, trl_min, trl_max, include_inactive, today
    filters: Filters = field(default_factory=dict)
    k: int = 10
    min_score: float | None = None
    dense_weight: float | None = None
    per_provider: int | None = None  # 0 = no limit
    bundle: bool = False  # best few of each kind
    per_kind: int = 3
    explain: bool = True
    exclude_ids: tuple[int, ...] | frozenset[int] = ()
    since: float | None = None  # unix seconds: only resources updated since (digests)
    pool: int | None = None  # candidates retrieved from each index; None: max(100, 5 x the list's length)
    highlights: bool = True  # explanations read titles and descriptions from the store for highlights
    language: str | None = None  # of the explanations; None: each resource's own
    interleave: bool = True  # a ranker on trial may interleave this list
    # leave the generic park words (场景, 技术 ...) out of the lexical search. None: when the query is a need or an
    # enterprise (park records, phrased as the list was written from), not for free text; measured both ways in
    # docs/matching.md. The reverse direction always leaves them out
    drop_generic: bool | None = None


@dataclass(frozen=True)
class Resolved:
    text: str
    ask: Ask
    kinds: tuple[str, ...]
    enterprise_id: int | None = None  # the enterprise the list is for (a need's own), whose curation applies


def check_k(k: int, settings: Settings) -> None:
    if k < 1 or k > settings.max_k:
        raise ValidationFailed(
            f"k: must be between 1 and {settings.max_k} (got {k})",
            errors=[{"field": "k", "message": f"must be between 1 and {settings.max_k}"}],
        )


def check_text(text: str, settings: Settings) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationFailed(
            "text: the query text is empty", errors=[{"field": "text", "message": "empty"}]
        )
    if len(text) > settings.max_query_chars:
        raise ValidationFailed(
            f"text: the query text has {len(text)} characters; the limit is {settings.max_query_chars}",
            errors=[{"field": "text", "message": "too long"}],
        )
    return text


def _load_need(session: Session, need_id: int, tenant: str) -> Need:
    need = session.get(Need, need_id) if valid_id(need_id) else None
    if need is None or not visible_to(need, tenant):
        raise NotFound(f"need {need_id} not found")
    return need


def _load_enterprise(session: Session, enterprise_id: int, tenant: str) -> Enterprise:
    ent = session.get(Enterprise, enterprise_id) if valid_id(enterprise_id) else None
    if ent is None or not visible_to(ent, tenant):
        raise NotFound(f"enterprise {enterprise_id} not found")
    return ent


def build_ask(q: MatchQuery, tenant: str, *, db: Engine, taxonomy: Taxonomy, settings: Settings) -> Resolved:
    """Resolve need / enterprise / free text into query text, the structured ask and the kinds sought."""
    f = q.filters
    kinds = tuple(q.kinds)
    text = None
    industries: list[str] = []
    region = stage = None
    amount = trl_min = None
    enterprise_id = q.enterprise_id
    if q.need_id is not None:
        with Session(db) as session:
            need = _load_need(session, q.need_id, tenant)
            ent = session.get(Enterprise, need.enterprise_id)
            if ent is not None and not visible_to(ent, tenant):
                ent = None  # a public need of a private enterprise: its stage and tags are not the caller's to see
        text = "\n".join(p for p in (need.title, need.description) if p)
        industries = list(need.industries or [])
        region, amount, trl_min = need.region, need.amount, need.trl_min
        stage = ent.stage if ent is not None else None
        if not industries and ent is not None:
            industries = list(ent.industries or [])
        kinds = kinds or tuple(need.kinds or ())
        enterprise_id = need.enterprise_id
    elif q.enterprise_id is not None:
        with Session(db) as session:
            ent = _load_enterprise(session, q.enterprise_id, tenant)
        text = "\n".join(p for p in (ent.name, ent.description) if p)
        industries, region, stage = list(ent.industries or []), ent.region, ent.stage
    if q.text:
        text = (q.text + "\n" + text) if text and q.need_id is None and q.enterprise_id is None else q.text
    text = check_text(text or "", settings)
    if f.get("industries"):
        # tags in either language or by alias ("AI" = "人工智能"): the taxonomy's ids
        industries = taxonomy.normalize_tags(f["industries"])[0]
    region = f.get("region", region)
    stage = f.get("stage", stage)
    amount = f.get("amount", amount)
    trl_min = f.get("trl_min", trl_min)
    if not industries:
        # free text: the taxonomy terms it names are its tags (the bilingual bridge)
        industries = taxonomy.tags_in_text(text)
    ask = Ask(
        industries=frozenset(taxonomy.expand(industries)),
        own_industries=tuple(industries),
        region=region,
        stage=stage,
        amount=amount,
        trl_min=trl_min,
        trl_max=f.get("trl_max"),
        kinds=kinds,
        today=f.get("today") or date.today(),
    )
    return Resolved(text, ask, kinds, enterprise_id)


def resource_filter(q: MatchQuery, r: Resolved, tenant: str, taxonomy: Taxonomy) -> Filter:
    """The hard filters of a forward match: visibility, status, expiry, kinds, and what the ask rules out."""
    f, ask, kinds = q.filters, r.ask, r.kinds
    return Filter(
        tenant=tenant,
        kinds=kinds,
        today=ask.today,
        industries=frozenset(taxonomy.expand(taxonomy.normalize_tags(f["industries"])[0]))
        if f.get("industries")
        else frozenset(),
        regions=(f["region"],) if f.get("region") else (),
        include_inactive=bool(f.get("include_inactive")),
        stage=ask.stage if ("fund" in kinds or not kinds) else None,
        amount=ask.amount if f.get("amount") is not None or q.need_id is not None else None,
        trl_min=ask.trl_min,
        trl_max=ask.trl_max,
        since=q.since,
        exclude=frozenset(q.exclude_ids),
    )


def _drops_generic(q: MatchQuery) -> bool:
    if q.drop_generic is not None:
        return q.drop_generic
    return q.need_id is not None or q.enterprise_id is not None


def match_plan(
    q: MatchQuery,
    tenant: str,
    *,
    side: Side,
    db: Engine,
    taxonomy: Taxonomy,
    settings: Settings,
    weight_for: Callable[[str], float],
    vector: QueryVector | None = None,
) -> Plan:
    """The pipeline's plan of a forward match: the caller's differences (score floor, diversity, bundles,
    candidate pool, explanation language and highlights, a precomputed query vector) become its settings."""
    check_k(q.k, settings)
    r = build_ask(q, tenant, db=db, taxonomy=taxonomy, settings=settings)
    tokens = tokenize(r.text)
    # the curation step: the enterprise's blocked resources are filtered out, its pins come first
    curated = curated_for(db, tenant=tenant, enterprise_id=r.enterprise_id)
    hard = resource_filter(q, r, tenant, taxonomy)
    if curated.blocked:
        hard = replace(hard, exclude=hard.exclude | curated.blocked)
    bundle_kinds = (r.kinds or ("result", "scenario", "fund", "incubator")) if q.bundle else ()
    k_total = q.per_kind * 4 if q.bundle else q.k
    ask = r.ask
    return Plan(
        side=side,
        text=r.text,
        tokens=tokens,
        terms=query_terms(r.text, tokens) if _drops_generic(q) else None,
        ask=ask,
        filter=hard,
        fit=lambda m, now: fit_features(ask, m, now=now),
        dense_weight=weight_for(r.text) if q.dense_weight is None else q.dense_weight,
        min_score=settings.default_min_score if q.min_score is None else q.min_score,
        k=q.k,
        pool=q.pool if q.pool is not None else max(100, 5 * k_total),
        per_provider=settings.max_per_provider if q.per_provider is None else q.per_provider,
        bundle_kinds=bundle_kinds,
        per_kind=q.per_kind,
        kinds_apart=r.kinds if len(r.kinds) > 1 and not q.bundle else (),
        vector=vector,
        explainer=resource_explainer(
            db=db,
            taxonomy=taxonomy,
            lexical=side.pair.lexical,
            text=r.text,
            tokens=tokens,
            ask=ask,
            tenant=tenant,
            highlights=q.highlights,
            language=q.language,
        )
        if q.explain
        else None,
        need_id=q.need_id,
        enterprise_id=q.enterprise_id,
        pinned=curated.pinned,
    )
