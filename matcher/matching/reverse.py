"""The resource -> demand direction: a resource's plan over the demand side (open needs and enterprises), its
fit (the candidate's ask against the resource), its constraints and its explanations."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from embeddings.lexical.bm25 import LexicalIndex
from embeddings.text import tokenize
from matcher.domain.generic_terms import content_terms, query_terms
from matcher.domain.tables import Resource
from matcher.domain.taxonomy import Taxonomy
from matcher.domain.visibility import visible_to
from matcher.errors import NotFound
from matcher.indexing.catalog import Filter, Meta
from matcher.indexing.documents import resource_document
from matcher.indexing.indexer import Side
from matcher.indexing.metas import resource_meta
from matcher.matching.explain import explain, with_crosslingual
from matcher.matching.fit import Ask, constraints, fit_features
from matcher.matching.pipeline import Plan
from matcher.matching.retrieval import Candidate
from matcher.store.db import valid_id


def reverse_fit(resource: Meta, cand: Meta, now: float) -> dict[str, float | None]:
    """How well the resource serves the candidate's ask; recency is the candidate's, no deadline applies."""
    ask = Ask(
        industries=cand.industries,
        own_industries=cand.own_industries,
        region=cand.region,
        stage=cand.stage,
        amount=cand.amount,
        trl_min=cand.trl_min,
    )
    f = fit_features(ask, resource, now=now)
    f["recency"] = math.exp(-max(0.0, (now - cand.updated) / 86400) / 180) if cand.updated else None
    f["deadline"] = None
    return f


def reverse_constraints(resource: Meta, need: Meta) -> list[dict[str, Any]]:
    ask = Ask(
        industries=need.industries,
        own_industries=need.own_industries,
        region=need.region,
        amount=need.amount,
        trl_min=need.trl_min,
        kinds=need.kinds_sought,
    )
    return constraints(ask, resource, caller_tenant=resource.tenant)


def _explainer(
    resource: Meta, text: str, tokens: list[str], taxonomy: Taxonomy, lexical: LexicalIndex, language: str
) -> Callable[[list[Candidate]], dict[int, dict[str, Any]]]:
    """Each enterprise's or need's explanation, in `language`: the resource's words its record holds (read off
    the demand side's lexical index), the fields both are in, what the need asks that the resource meets."""
    tokens = with_crosslingual(text, tokens)
    content = content_terms(tokens)
    text_tags = taxonomy.tags_in_text(text)

    def stage(cands: list[Candidate]) -> dict[int, dict[str, Any]]:
        return {
            c.id: explain(
                query_text=text,
                query_tokens=tokens,
                doc_tokens=lexical.explain(content, c.id),
                doc_fields={"title": c.meta.title},
                ask_tags=resource.own_industries,
                doc_tags=tuple(c.meta.industries),
                constraints=reverse_constraints(resource, c.meta) if c.meta.kind == "need" else [],
                components=c.components,
                taxonomy=taxonomy,
                language=language,
                query_highlights=False,
                text_tags=text_tags,
            )
            for c in cands
        }

    return stage


def reverse_plan(
    resource_id: int,
    *,
    tenant: str,
    side: Side,
    db: Engine,
    taxonomy: Taxonomy,
    k: int,
    min_score: float,
    include: Sequence[str],
    weight_for: Callable[[str], float],
    language: str | None = None,
) -> Plan:
    """resource (scenario, fund, incubator, result) -> the enterprises and open needs it fits; explanations in
    `language`, else in the resource's own."""
    with Session(db) as session:
        r = session.get(Resource, resource_id) if valid_id(resource_id) else None
        if r is None or not visible_to(r, tenant):
            raise NotFound(f"resource {resource_id} not found")
        text = resource_document(r, taxonomy)
        meta = resource_meta(r, taxonomy)
        own = "en" if (r.language or "").startswith("en") else "zh"
    ask = Ask(
        industries=meta.industries, own_industries=meta.own_industries, region=meta.region, kinds=(r.kind,)
    )
    tokens = tokenize(text)
    return Plan(
        side=side,
        text=text,
        tokens=tokens,
        terms=query_terms(text, tokens),
        ask=ask,
        filter=Filter(
            tenant=tenant,
            kinds=tuple(x for x in include if x in ("need", "enterprise")),
            today=ask.today,
            sought_kind=r.kind,
            # a fund's stages and tickets filter the demand side (unknowns pass)
            fund=meta if r.kind == "fund" else None,
        ),
        fit=lambda m, now: reverse_fit(meta, m, now),
        dense_weight=weight_for(text),
        min_score=min_score,
        k=k,
        pool=max(100, 5 * k),
        explainer=_explainer(meta, text, tokens, taxonomy, side.pair.lexical, language or own),
    )
