"""A chain as GET /v1/chains/{id} shows it: per link the park's enterprises, prospects, resources and needs on
it (officers' decisions included, excluded ones left out), the counts, and the ranked gaps with who could fill
them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from matcher.chains.gaps import PROSPECT, LinkCounts, gaps
from matcher.chains.rules import depths
from matcher.chains.store import get_chain, links_of
from matcher.domain.chain_schemas import ChainPublic, ChainSummary, LinkPublic, PlacedRecord
from matcher.domain.park_tables import ChainLink, ChainPlacement, IndustryChain
from matcher.domain.tables import Enterprise, Need, Resource, as_utc
from matcher.matching.engine import MatchEngine
from matcher.store.keys import Caller

CHUNK = 5000


# the columns a view needs of each record type (descriptions are never read)
_COLUMNS: dict[str, tuple[Any, ...]] = {
    "enterprise": (Enterprise.id, Enterprise.name, Enterprise.tier),
    "need": (Need.id, Need.title, Need.enterprise_id, Need.status),
    "resource": (Resource.id, Resource.title, Resource.kind),
}
_MODELS: dict[str, Any] = {"enterprise": Enterprise, "need": Need, "resource": Resource}


def _rows(session: Session, record_type: str, ids: Iterable[int], tenant: str) -> dict[int, Any]:
    """The tenant's records of these ids, as rows of the view's columns (deleted or moved ones are absent)."""
    model, columns = _MODELS[record_type], _COLUMNS[record_type]
    wanted = sorted(set(ids))
    out: dict[int, Any] = {}
    for start in range(0, len(wanted), CHUNK):
        part = wanted[start : start + CHUNK]
        stmt = select(*columns).where(col(model.id).in_(part), model.tenant_id == tenant)
        out.update({r.id: r for r in session.exec(stmt)})
    return out


_PLACEMENT = (
    ChainPlacement.id,
    ChainPlacement.link_id,
    ChainPlacement.record_type,
    ChainPlacement.record_id,
    ChainPlacement.score,
    ChainPlacement.source,
    ChainPlacement.decision,
)


def placements(session: Session, chain: IndustryChain) -> dict[int, list[Any]]:
    """The chain's placements by link (without their explanations), excluded ones dropped."""
    stmt = select(*_PLACEMENT).where(ChainPlacement.chain_id == chain.id)
    out: dict[int, list[Any]] = defaultdict(list)
    for p in session.exec(stmt):
        if p.decision != "excluded":
            out[p.link_id].append(p)
    return out


def _explanations(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK):
        stmt = select(ChainPlacement.id, ChainPlacement.explanation).where(
            col(ChainPlacement.id).in_(ids[start : start + CHUNK])
        )
        out.update({i: ex or {} for i, ex in session.exec(stmt)})
    return out


def _placed(p: Any, row: Any, ex: dict[str, Any], explain: bool) -> PlacedRecord:
    return PlacedRecord(
        id=p.record_id,
        name=getattr(row, "name", None) or getattr(row, "title", None),
        kind=getattr(row, "kind", None),
        enterprise_id=getattr(row, "enterprise_id", None) if p.record_type == "need" else None,
        tier=getattr(row, "tier", None) if p.record_type == "enterprise" else None,
        score=p.score,
        source=p.source,
        decision=p.decision,
        placement_id=p.id or 0,
        summary=ex.get("summary"),
        explanation=ex if explain else None,
    )


def _stale(session: Session, chain: IndustryChain) -> int:
    if chain.placed_at is None:
        return 0
    n = 0
    for model in (Enterprise, Need, Resource):
        stmt = select(func.count()).where(
            model.tenant_id == chain.tenant_id, model.updated_at > chain.placed_at
        )
        n += session.exec(stmt).one()
    return int(n)


def link_lists(
    session: Session, chain: IndustryChain, links: Sequence[ChainLink], explain: bool, per_link: int
) -> tuple[dict[int, dict[str, list[PlacedRecord]]], dict[int, dict[str, int]]]:
    """Per link, the best `per_link` records of each group (pinned first) and the groups' whole counts."""
    by_link = placements(session, chain)
    ids: dict[str, set[int]] = defaultdict(set)
    for rows in by_link.values():
        for p in rows:
            ids[p.record_type].add(p.record_id)
    found = {t: _rows(session, t, ids[t], chain.tenant_id) for t in _MODELS}
    top: dict[int, dict[str, list[tuple[Any, Any]]]] = {}
    counts: dict[int, dict[str, int]] = {}
    for link in links:
        got: dict[str, list[tuple[Any, Any]]] = {
            "enterprises": [],
            "prospects": [],
            "resources": [],
            "needs": [],
        }
        for p in by_link.get(link.id or 0, []):
            row = found[p.record_type].get(p.record_id)
            if row is None or (p.record_type == "need" and row.status != "open"):
                continue
            if p.record_type == "enterprise":
                group = "prospects" if row.tier == PROSPECT else "enterprises"
            else:
                group = p.record_type + "s"
            got[group].append((p, row))
        counts[link.id or 0] = {name: len(items) for name, items in got.items()}
        order = lambda pr: (pr[0].decision != "pinned", -pr[0].score, pr[0].record_id)  # noqa: E731
        top[link.id or 0] = {name: sorted(items, key=order)[:per_link] for name, items in got.items()}
    shown = sorted({p.id for groups in top.values() for items in groups.values() for p, _ in items})
    ex = _explanations(session, shown)
    lists = {
        link_id: {
            name: [_placed(p, row, ex.get(p.id, {}), explain) for p, row in items]
            for name, items in groups.items()
        }
        for link_id, groups in top.items()
    }
    return lists, counts


def chain_view(
    session: Session,
    *,
    caller: Caller,
    engine: MatchEngine | None,
    chain_id: int,
    per_link: int = 50,
    explain: bool = False,
    candidates: int = 10,
) -> ChainPublic:
    chain = get_chain(session, caller=caller, id=chain_id)
    links = links_of(session, chain.id or 0)
    lists, counts = link_lists(session, chain, links, explain, per_link)
    depth = depths([x.key for x in links], {x.key: x.feeds for x in links})
    link_counts = {i: LinkCounts(c["enterprises"], c["needs"], c["resources"]) for i, c in counts.items()}
    found_gaps = gaps(session, engine, caller.tenant, chain, links, link_counts, k=candidates)
    gap_of = {g.link_id: g for g in found_gaps}
    out_links = []
    for link in links:
        got = lists[link.id or 0]
        out_links.append(
            LinkPublic(
                id=link.id or 0,
                key=link.key,
                name_zh=link.name_zh,
                name_en=link.name_en,
                description=link.description,
                stage=link.stage,
                depth=depth[link.key],
                feeds=link.feeds,
                industries=link.industries,
                keywords=link.keywords,
                counts=counts[link.id or 0],
                gap=(link.id or 0) in gap_of,
                gaps=[gap_of[link.id or 0]] if (link.id or 0) in gap_of else [],
                **got,
            )
        )
    data = chain.model_dump(exclude={"tenant_id", "created_by"})
    data.update(
        links=out_links,
        gaps=found_gaps,
        stale_records=_stale(session, chain),
        placed_at=as_utc(chain.placed_at),
        created_at=as_utc(chain.created_at),
        updated_at=as_utc(chain.updated_at),
    )
    return ChainPublic.model_validate(data)


def chain_summary(session: Session, chain: IndustryChain) -> ChainSummary:
    n = session.exec(select(func.count()).where(ChainLink.chain_id == chain.id)).one()
    return ChainSummary(
        id=chain.id or 0,
        name_zh=chain.name_zh,
        name_en=chain.name_en,
        shared=chain.shared,
        links=int(n),
        placed_at=as_utc(chain.placed_at),
        created_at=as_utc(chain.created_at),
    )
