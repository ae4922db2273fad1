"""Gaps of a chain (links with no or few park enterprises), ranked, each with who could fill it: other tenants'
public enterprises and resources (visibility.py's rule) and the park's own prospects (tier `prospect`), ranked
by the match pipeline against the link. That list is the park's investment-attraction list (招商信息库)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import or_
from sqlmodel import Session, col, select

from matcher.chains.scoring import explanation, index_key, link_queries, record_key, score
from matcher.domain.chain_schemas import Candidate, Gap
from matcher.domain.park_tables import ChainLink, Graduation, IndustryChain
from matcher.domain.tables import Enterprise, Resource
from matcher.domain.visibility import visible_clause
from matcher.indexing.catalog import Filter
from matcher.matching.engine import MatchEngine

PROSPECT = "prospect"


@dataclass(frozen=True)
class LinkCounts:
    enterprises: int
    needs: int
    resources: int


def rank_gaps(
    chain: IndustryChain, links: Sequence[ChainLink], counts: dict[int, LinkCounts]
) -> list[tuple[ChainLink, LinkCounts]]:
    """Links with fewer park enterprises than the chain's threshold: emptiest first, then those whose
    enterprises raise the most needs, then the fewest resources, then the chain's order."""
    out = [
        (link, counts[link.id or 0])
        for link in links
        if counts[link.id or 0].enterprises < chain.gap_threshold
    ]
    return sorted(out, key=lambda lc: (lc[1].enterprises, -lc[1].needs, lc[1].resources, lc[0].position))


def why(c: LinkCounts, threshold: int) -> tuple[str, str]:
    if c.enterprises == 0:
        zh, en = "该环节尚无园区企业", "no park enterprise on this link"
    else:
        zh = f"仅有 {c.enterprises} 家园区企业（少于 {threshold} 家）"
        en = (
            f"only {c.enterprises} park enterprise{'s' if c.enterprises > 1 else ''} (fewer than {threshold})"
        )
    if c.needs:
        zh += f"；园区企业在此环节提出 {c.needs} 项需求"
        en += f"; the park's enterprises raise {c.needs} need{'s' if c.needs > 1 else ''} here"
    if c.resources == 0:
        zh += "；园区尚无服务该环节的资源"
        en += "; no resource of the park serves it"
    return zh, en


def _outside(session: Session, engine: MatchEngine, tenant: str) -> dict[str, np.ndarray]:
    """Index keys of the enterprises (others' public ones, the park's prospects) and resources (others' public,
    active ones) a gap could be filled from."""
    ents = session.exec(
        select(Enterprise.id).where(
            visible_clause(Enterprise, tenant),
            or_(Enterprise.tenant_id != tenant, Enterprise.tier == PROSPECT),
        )
    ).all()
    res = session.exec(
        select(Resource.id).where(visible_clause(Resource, tenant), Resource.tenant_id != tenant)
    ).all()
    out = {
        "demand": np.asarray(sorted(index_key("enterprise", i) for i in ents), dtype=np.int64),
        "supply": np.asarray(sorted(res), dtype=np.int64),
    }
    today = date.today()
    for name, side, kinds in (
        ("demand", engine.indexer.demand_side(), ("enterprise",)),
        ("supply", engine.indexer.supply_side(), ()),
    ):
        allowed = side.catalog.allowed(Filter(tenant=tenant, kinds=kinds, today=today))
        if allowed is not None:
            out[name] = np.intersect1d(out[name], allowed)
    return out


def candidates(
    session: Session,
    engine: MatchEngine,
    tenant: str,
    chain: IndustryChain,
    gap_links: Sequence[ChainLink],
    k: int = 10,
) -> dict[int, dict[str, list[Candidate]]]:
    """For each gap link, the best `k` outside enterprises and resources scoring at least the chain's floor."""
    if not gap_links:
        return {}
    ids = _outside(session, engine, tenant)
    sides = {"demand": engine.indexer.demand_side(), "supply": engine.indexer.supply_side()}
    ranker = engine.ranker_for(tenant)
    found: dict[int, dict[str, list[tuple[Any, ...]]]] = {}
    for q in link_queries(engine, gap_links):
        per: dict[str, list[tuple[Any, ...]]] = {"enterprises": [], "resources": []}
        for name, side in sides.items():
            cands = [
                c
                for c in score(engine, side, q, ids[name], ranker, n=max(50, 5 * k))
                if c.score >= chain.min_score
            ]
            for c in sorted(cands, key=lambda c: (-c.score, c.id))[:k]:
                rtype, rid = record_key(name, c.id)
                per["enterprises" if rtype == "enterprise" else "resources"].append(
                    (rid, c, explanation(engine, side, q, c))
                )
        found[q.link.id or 0] = per
    return _named(session, tenant, found)


def _named(
    session: Session, tenant: str, found: dict[int, dict[str, list[tuple[Any, ...]]]]
) -> dict[int, dict[str, list[Candidate]]]:
    """Candidates with the names the caller may see (rows deleted or hidden since the index read drop)."""
    ent_ids = {rid for per in found.values() for rid, *_ in per["enterprises"]}
    res_ids = {rid for per in found.values() for rid, *_ in per["resources"]}
    ents = (
        {
            e.id: e
            for e in session.exec(
                select(Enterprise).where(col(Enterprise.id).in_(ent_ids), visible_clause(Enterprise, tenant))
            )
        }
        if ent_ids
        else {}
    )
    res = (
        {
            r.id: r
            for r in session.exec(
                select(Resource).where(col(Resource.id).in_(res_ids), visible_clause(Resource, tenant))
            )
        }
        if res_ids
        else {}
    )
    grads = (
        set(
            session.exec(
                select(Graduation.enterprise_id).where(col(Graduation.enterprise_id).in_(ent_ids))
            ).all()
        )
        if ent_ids
        else set()
    )
    out: dict[int, dict[str, list[Candidate]]] = {}
    for link_id, per in found.items():
        listed: dict[str, list[Candidate]] = {"enterprises": [], "resources": []}
        for rid, c, ex in per["enterprises"]:
            e = ents.get(rid)
            if e is not None:
                origin = "prospect" if e.tenant_id == tenant else "other_tenant"
                listed["enterprises"].append(
                    Candidate(
                        type="enterprise",
                        id=rid,
                        name=e.name,
                        origin=origin,
                        graduating=rid in grads,
                        score=round(c.score, 4),
                        explanation=ex,
                    )
                )
        for rid, c, ex in per["resources"]:
            r = res.get(rid)
            if r is not None:
                listed["resources"].append(
                    Candidate(
                        type="resource",
                        id=rid,
                        name=r.title,
                        kind=r.kind,
                        origin="other_tenant",
                        score=round(c.score, 4),
                        explanation=ex,
                    )
                )
        out[link_id] = listed
    return out


def gaps(
    session: Session,
    engine: MatchEngine | None,
    tenant: str,
    chain: IndustryChain,
    links: Sequence[ChainLink],
    counts: dict[int, LinkCounts],
    k: int = 10,
) -> list[Gap]:
    ranked = rank_gaps(chain, links, counts)
    cands = (
        candidates(session, engine, tenant, chain, [link for link, _ in ranked], k)
        if engine is not None
        else {}
    )
    out = []
    for rank, (link, c) in enumerate(ranked, start=1):
        zh, en = why(c, chain.gap_threshold)
        out.append(
            Gap(
                link_id=link.id or 0,
                key=link.key,
                name_zh=link.name_zh,
                name_en=link.name_en,
                rank=rank,
                enterprises=c.enterprises,
                needs=c.needs,
                resources=c.resources,
                zh=zh,
                en=en,
                candidates=cands.get(link.id or 0, {"enterprises": [], "resources": []}),
            )
        )
    return out
