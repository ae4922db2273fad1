"""How well each demand-side participant of an event fits each supply-side one: the match pipeline's own score.

For every enterprise, its profile and its most recent open needs are each planned as a forward match
(`matching.query.match_plan`: the ask, the hard filters, fit, the explanation stage); query texts are encoded in
one batch; each plan's candidates are retrieved among the event's resources only (`retrieval.retrieve`, both
indexes) and ranked by the pipeline's own stage (`Pipeline.rank`: fusion, fit, the tenant's ranker). A pair's
score is its best over the enterprise's queries, so the meeting plan improves whenever matching does.
Explanations are made for the pairs that meet only (the plan's explainer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from matcher.domain.tables import Enterprise, Need
from matcher.errors import ValidationFailed
from matcher.indexing.indexer import Side
from matcher.matching.engine import MatchEngine
from matcher.matching.pipeline import Plan
from matcher.matching.query import MatchQuery, match_plan
from matcher.matching.retrieval import Candidate, QueryVector, Relevance, retrieve, search_text

ENCODE_BATCH = 256


@dataclass
class _Query:
    row: int  # the enterprise's row in the score matrix
    need_id: int | None
    need_title: str | None
    plan: Plan


@dataclass
class PairScores:
    scores: np.ndarray  # (enterprises, resources)
    model_version: str
    _best: dict[tuple[int, int], tuple[Candidate, _Query]] = field(default_factory=dict, repr=False)

    def need_of(self, i: int, j: int) -> int | None:
        best = self._best.get((i, j))
        return None if best is None else best[1].need_id

    def features(self, i: int, j: int) -> dict[str, float | None]:
        best = self._best.get((i, j))
        return {} if best is None else best[0].features()

    def explain(self, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], dict[str, Any]]:
        """The pipeline's explanation of each scored pair, with the query that made its score (`via`)."""
        by_query: dict[int, list[tuple[tuple[int, int], Candidate, _Query]]] = {}
        for ij in pairs:
            best = self._best.get(ij)
            if best is not None:
                by_query.setdefault(id(best[1]), []).append((ij, *best))
        out: dict[tuple[int, int], dict[str, Any]] = {}
        for items in by_query.values():
            q = items[0][2]
            made = q.plan.explainer([c for _, c, _ in items]) if q.plan.explainer is not None else {}
            for ij, c, _ in items:
                ex = dict(made.get(c.id) or {"components": c.components})
                ex["via"] = (
                    {"type": "enterprise"}
                    if q.need_id is None
                    else {"type": "need", "need_id": q.need_id, "title": q.need_title}
                )
                out[ij] = ex
        return out


def _open_needs(
    session: Session, enterprise_ids: Sequence[int], per_enterprise: int
) -> dict[int, list[Need]]:
    if per_enterprise <= 0 or not enterprise_ids:
        return {}
    stmt = (
        select(Need)
        .where(col(Need.enterprise_id).in_(list(enterprise_ids)), Need.status == "open")
        .order_by(col(Need.updated_at).desc(), col(Need.id).desc())
    )
    out: dict[int, list[Need]] = {}
    for n in session.exec(stmt):
        mine = out.setdefault(n.enterprise_id, [])
        if len(mine) < per_enterprise:
            mine.append(n)
    return out


def _plan(engine: MatchEngine, tenant: str, side: Side, q: MatchQuery, text: str) -> Plan:
    """The forward plan of `q`; a profile or need longer than a query may be is asked by its beginning."""
    q.k, q.per_provider, q.min_score, q.interleave = 1, 0, 0.0, False
    args = dict(side=side, db=engine.db, taxonomy=engine.taxonomy, settings=engine.settings)
    try:
        return match_plan(q, tenant, weight_for=engine.dense_weight_for, **args)
    except ValidationFailed:
        q.text = text[: engine.settings.max_query_chars]
        return match_plan(q, tenant, weight_for=engine.dense_weight_for, **args)


def _plans(
    engine: MatchEngine, tenant: str, enterprise_ids: Sequence[int], needs_per_enterprise: int
) -> list[_Query]:
    side = engine.indexer.supply_side()
    with Session(engine.db) as session:
        needs = _open_needs(session, enterprise_ids, needs_per_enterprise)
        ents = {
            e.id: e
            for e in session.exec(select(Enterprise).where(col(Enterprise.id).in_(list(enterprise_ids))))
        }
    out = []
    for row, eid in enumerate(enterprise_ids):
        ent = ents.get(eid)
        if ent is None:
            continue
        text = f"{ent.name}\n{ent.description}"
        out.append(_Query(row, None, None, _plan(engine, tenant, side, MatchQuery(enterprise_id=eid), text)))
        for n in needs.get(eid, []):
            plan = _plan(engine, tenant, side, MatchQuery(need_id=n.id), f"{n.title}\n{n.description}")
            out.append(_Query(row, n.id, n.title, plan))
    return out


def _encode(queries: list[_Query]) -> None:
    """Every query text encoded once, in batches, by the encoder of the index pair the plans read."""
    if not queries:
        return
    encoder = queries[0].plan.side.pair.encoder
    texts = list(dict.fromkeys(q.plan.text for q in queries if q.plan.dense_weight > 0))
    vectors: dict[str, np.ndarray] = {}
    for i in range(0, len(texts), ENCODE_BATCH):
        chunk = texts[i : i + ENCODE_BATCH]
        embedded = encoder.encode_queries([search_text(t) for t in chunk])
        vectors.update(zip(chunk, np.asarray(embedded, dtype=np.float32), strict=True))
    for q in queries:
        vec = vectors.get(q.plan.text)
        if vec is not None:
            q.plan.vector = QueryVector(encoder.model_id, q.plan.text, vec)


def score_pairs(
    engine: MatchEngine,
    tenant: str,
    enterprise_ids: Sequence[int],
    resource_ids: Sequence[int],
    *,
    needs_per_enterprise: int = 3,
) -> PairScores:
    """The pipeline's score of every (enterprise, resource) pair, in [0, 1]; 0 where the resource is filtered
    out for that enterprise (kind sought, stage, ticket, expiry, status) or shares nothing with it."""
    scores = np.zeros((len(enterprise_ids), len(resource_ids)), dtype=np.float64)
    ranker = engine.ranker_for(tenant)
    out = PairScores(scores, str(ranker.version))
    if not len(enterprise_ids) or not len(resource_ids):
        return out
    column = {int(r): j for j, r in enumerate(resource_ids)}
    event_ids = np.asarray(sorted(column), dtype=np.int64)
    queries = _plans(engine, tenant, enterprise_ids, needs_per_enterprise)
    _encode(queries)
    for q in queries:
        plan = q.plan
        allowed = plan.side.catalog.allowed(plan.filter)
        ids = event_ids if allowed is None else np.intersect1d(event_ids, allowed)
        if not ids.size:
            continue
        cands = retrieve(
            plan.side, plan.text, plan.tokens, ids, int(ids.size), plan.dense_weight, plan.vector
        )
        engine.pipeline.rank(cands, plan.fit, plan.dense_weight, ranker, Relevance.language_of(plan.text))
        for c in cands:
            j = column.get(c.id)
            if j is not None and c.score > scores[q.row, j]:
                scores[q.row, j] = c.score
                out._best[(q.row, j)] = (c, q)
    return out
