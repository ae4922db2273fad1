"""How well a record fits a chain link, by the match pipeline's own stages: the link (its bilingual names,
description, keywords and industries) is the query; candidates are retrieved from both indexes of a side among
the ids asked (`retrieval.retrieve`), fused, fitted against the link's industries and ranked by the tenant's
ranker (`Pipeline.rank`). So placements and gap candidates improve whenever matching does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embeddings.text import tokenize
from matcher.domain.park_tables import ChainLink
from matcher.domain.taxonomy import Taxonomy
from matcher.indexing.demand_keys import DEMAND_ENTERPRISE, DEMAND_NEED, demand_key, split_demand_key
from matcher.indexing.indexer import Side
from matcher.matching.engine import MatchEngine
from matcher.matching.explain import explain, summary
from matcher.matching.fit import Ask, fit_features
from matcher.matching.ranker import Ranker
from matcher.matching.retrieval import Candidate, QueryVector, retrieve


@dataclass
class LinkQuery:
    link: ChainLink
    text: str
    tokens: list[str]
    ask: Ask
    dense_weight: float
    vector: QueryVector | None = None

    def fit(self, meta: Any, now: float) -> dict[str, float | None]:
        return fit_features(self.ask, meta, now=now)


def link_text(link: ChainLink, taxonomy: Taxonomy) -> str:
    labels = [taxonomy.label(t, lang) for t in link.industries for lang in ("zh", "en")]
    parts = [link.name_zh, link.name_en, " ".join(link.keywords), " ".join(labels), link.description]
    return "\n".join(p for p in parts if p)[:2000]


def link_queries(engine: MatchEngine, links: Sequence[ChainLink]) -> list[LinkQuery]:
    """One query per link, their texts encoded in one batch by the serving encoder."""
    tax = engine.taxonomy
    out = []
    for link in links:
        text = link_text(link, tax)
        tags = list(link.industries) or tax.tags_in_text(text)
        ask = Ask(industries=frozenset(tax.expand(tags)), own_industries=tuple(tags))
        out.append(LinkQuery(link, text, tokenize(text), ask, engine.dense_weight_for(text)))
    dense = [q for q in out if q.dense_weight > 0]
    if dense:
        encoder = engine.indexer.supply_side().pair.encoder
        vecs = np.asarray(encoder.encode_queries([q.text for q in dense]), dtype=np.float32)
        for q, v in zip(dense, vecs, strict=True):
            q.vector = QueryVector(encoder.model_id, q.text, v)
    return out


def score(
    engine: MatchEngine, side: Side, q: LinkQuery, ids: np.ndarray, ranker: Ranker, n: int | None = None
) -> list[Candidate]:
    """The link's ranked candidates among `ids` (all of them, or the best `n` of each index)."""
    if not ids.size:
        return []
    cands = retrieve(side, q.text, q.tokens, ids, int(n or ids.size), q.dense_weight, q.vector)
    engine.pipeline.rank(cands, q.fit, q.dense_weight, ranker)
    return cands


def explanation(engine: MatchEngine, side: Side, q: LinkQuery, c: Candidate) -> dict[str, Any]:
    """Why a record fits a link: the link's terms it holds, the industries they share, the score's parts, and
    a line in each language."""
    tax = engine.taxonomy
    doc_tokens = set(side.pair.lexical.matched_terms(q.tokens, c.id))
    ex = explain(
        query_text="",
        query_tokens=q.tokens,
        doc_tokens=doc_tokens,
        doc_fields={},
        ask_tags=q.ask.own_industries,
        doc_tags=tuple(c.meta.industries),
        constraints=[],
        components=c.components,
        taxonomy=tax,
    )
    return {
        "matched_terms": ex["matched_terms"][:12],
        "tags_in_common": ex["tags_in_common"],
        "components": ex["components"],
        "summary": ex["summary"],
        "summary_en": summary(ex["matched_terms"], ex["concepts"], [], c.components, "en"),
    }


def record_key(side_name: str, c_id: int) -> tuple[str, int]:
    """(record type, record id) of a candidate of the demand or the supply side."""
    if side_name == "supply":
        return "resource", c_id
    kind, rid = split_demand_key(c_id)
    return ("need" if kind == DEMAND_NEED else "enterprise"), rid


def index_key(record_type: str, record_id: int) -> int:
    if record_type == "resource":
        return record_id
    return demand_key(DEMAND_NEED if record_type == "need" else DEMAND_ENTERPRISE, record_id)
