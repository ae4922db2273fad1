"""Placing a park's records on its chain's links: every enterprise (prospects too), open need and resource of the
tenant is scored against every link by the match pipeline (chains/scoring.py) and sits on its best links, at
most `max_links_per_record` of them, each scoring at least `min_score`. Officers' decisions stay: a record
pinned on a link is there whatever its score, one excluded from a link never lands there."""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlmodel import Session, delete, select

from matcher.chains.scoring import LinkQuery, explanation, index_key, link_queries, record_key, score
from matcher.chains.store import get_chain, links_of
from matcher.domain.park_tables import ChainPlacement, IndustryChain
from matcher.domain.tables import Enterprise, Need, Resource, utcnow
from matcher.indexing.catalog import Filter
from matcher.indexing.indexer import Side
from matcher.matching.engine import MatchEngine
from matcher.matching.retrieval import Candidate
from matcher.store import audit
from matcher.store.keys import Caller

Key = tuple[str, int]  # (record type, record id)


@dataclass
class _Best:
    """Each record's best links so far (a small heap), and the candidates behind pinned placements."""

    keep: int
    heaps: dict[Key, list[tuple[float, int, int]]] = field(default_factory=dict)
    cands: dict[tuple[Key, int], tuple[Candidate, int, str]] = field(default_factory=dict)

    def offer(self, key: Key, link: int, c: Candidate, q: int, side: str) -> None:
        heap = self.heaps.setdefault(key, [])
        item = (c.score, -link, link)
        if len(heap) < self.keep:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            dropped = heapq.heapreplace(heap, item)
            self.cands.pop((key, dropped[2]), None)
        else:
            return
        self.cands[(key, link)] = (c, q, side)


def own_ids(session: Session, tenant: str) -> dict[str, np.ndarray]:
    """The index keys of the tenant's enterprises, open needs and resources."""
    ents = session.exec(select(Enterprise.id).where(Enterprise.tenant_id == tenant)).all()
    needs = session.exec(select(Need.id).where(Need.tenant_id == tenant, Need.status == "open")).all()
    res = session.exec(select(Resource.id).where(Resource.tenant_id == tenant)).all()
    demand = [index_key("enterprise", i) for i in ents] + [index_key("need", i) for i in needs]
    return {
        "demand": np.asarray(sorted(demand), dtype=np.int64),
        "supply": np.asarray(sorted(res), dtype=np.int64),
    }


def _allowed(side: Side, tenant: str, kinds: tuple[str, ...], own: np.ndarray) -> np.ndarray:
    """The tenant's own records that the side's hard filters keep (active, not expired)."""
    allowed = side.catalog.allowed(Filter(tenant=tenant, kinds=kinds, today=date.today()))
    return own if allowed is None else np.intersect1d(own, allowed)


def _decisions(session: Session, chain_id: int) -> dict[tuple[Key, int], ChainPlacement]:
    stmt = select(ChainPlacement).where(
        ChainPlacement.chain_id == chain_id, ChainPlacement.source == "officer"
    )
    return {((p.record_type, p.record_id), p.link_id): p for p in session.exec(stmt)}


def _score_all(
    engine: MatchEngine,
    tenant: str,
    queries: list[LinkQuery],
    ids: dict[str, np.ndarray],
    chain: IndustryChain,
    decided: dict,
) -> _Best:
    ranker = engine.ranker_for(tenant)
    sides = {"demand": engine.indexer.demand_side(), "supply": engine.indexer.supply_side()}
    allowed = {
        "demand": _allowed(sides["demand"], tenant, ("enterprise", "need"), ids["demand"]),
        "supply": _allowed(sides["supply"], tenant, (), ids["supply"]),
    }
    best = _Best(chain.max_links_per_record)
    for qi, q in enumerate(queries):
        link = q.link.id or 0
        for name, side in sides.items():
            for c in score(engine, side, q, allowed[name], ranker):
                key = record_key(name, c.id)
                officer = decided.get((key, link))
                if officer is not None:
                    if officer.decision == "pinned":
                        best.cands[(key, -link)] = (
                            c,
                            qi,
                            name,
                        )  # its score and why, shown beside the decision
                    continue
                if c.score >= chain.min_score:
                    best.offer(key, link, c, qi, name)
    return best


def place_chain(session: Session, *, caller: Caller, engine: MatchEngine, chain_id: int) -> IndustryChain:
    """Place every record of the park on the chain again (officers' decisions kept); committed by the caller."""
    chain = get_chain(session, caller=caller, id=chain_id, action="update")
    links = links_of(session, chain.id or 0)
    t0 = time.perf_counter()
    ids = own_ids(session, caller.tenant)
    decided = _decisions(session, chain.id or 0)
    queries = link_queries(engine, links)
    sides = {"demand": engine.indexer.demand_side(), "supply": engine.indexer.supply_side()}
    best = _score_all(engine, caller.tenant, queries, ids, chain, decided)
    t1 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for (key, link), (c, qi, side) in best.cands.items():
        ex = explanation(engine, sides[side], queries[qi], c)
        if link < 0:  # a pinned placement: the officer's row gets the score and why
            officer = decided[(key, -link)]
            officer.score, officer.explanation = round(c.score, 6), ex
            session.add(officer)
            continue
        rows.append(
            dict(
                chain_id=chain.id,
                link_id=link,
                tenant_id=caller.tenant,
                record_type=key[0],
                record_id=key[1],
                score=round(c.score, 6),
                explanation=ex,
                source="auto",
                created_at=utcnow(),
            )
        )
    session.exec(
        delete(ChainPlacement).where(ChainPlacement.chain_id == chain.id, ChainPlacement.source == "auto")
    )
    for start in range(0, len(rows), 2000):
        session.execute(insert(ChainPlacement), rows[start : start + 2000])
    t2 = time.perf_counter()
    placed = {k for k, _ in best.cands}
    counts = {"enterprise": 0, "need": 0, "resource": 0}
    for t, _ in placed:
        counts[t] += 1
    chain.placed_at = utcnow()
    chain.placement_stats = {
        "records": {
            "enterprise": int(sum(1 for k in ids["demand"] if k & 1)),
            "need": int(sum(1 for k in ids["demand"] if not k & 1)),
            "resource": int(ids["supply"].size),
        },
        "placed": counts,
        "placements": len(rows),
        "officer_decisions": len(decided),
        "links": len(links),
        "model_version": str(engine.ranker_for(caller.tenant).version),
        "seconds": {"score": round(t1 - t0, 3), "write": round(t2 - t1, 3)},
    }
    session.add(chain)
    summary = {"placements": len(rows), "links": len(links)}
    audit.record(session, caller, "chain.place", record_type="chain", record_id=chain.id, summary=summary)
    session.flush()
    return chain
