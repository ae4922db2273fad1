"""Relay incubation (接续孵化): an incubator marks one of its enterprises as graduating; the service lists the
chains and links of the parks that opted into sharing (`IndustryChain.shared`) that it fits, and shows each park
the public graduates that fit its own chains. Fit is the match pipeline's score of the link against the
enterprise (chains/scoring.py), the same score chain placement uses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from sqlalchemy import func
from sqlmodel import Session, col, select

from matcher.chains.scoring import explanation, index_key, link_queries, record_key, score
from matcher.domain.park_tables import ChainLink, ChainPlacement, Graduation, IndustryChain
from matcher.domain.permissions import authorize
from matcher.domain.relay_schemas import (
    ChainFit,
    GraduateFit,
    GraduationCreate,
    GraduationPublic,
    LinkFit,
    RelayPublic,
)
from matcher.domain.tables import Enterprise, as_utc
from matcher.domain.visibility import visible_clause
from matcher.errors import Conflict, NotFound
from matcher.matching.engine import MatchEngine
from matcher.store import audit, records
from matcher.store.keys import Caller

MAX_GRADUATES = 500


def mark(session: Session, *, caller: Caller, enterprise_id: int, data: GraduationCreate) -> Graduation:
    authorize(caller, "create", "graduation", owner_tenant=caller.tenant)
    ent = records.get_enterprise(session, caller=caller, id=enterprise_id)
    authorize(
        caller,
        "create",
        "graduation",
        owner_tenant=ent.tenant_id,
        record=f"enterprise with id {enterprise_id}",
    )
    if session.exec(select(Graduation.id).where(Graduation.enterprise_id == ent.id)).first() is not None:
        raise Conflict(f"enterprise {enterprise_id} is marked as graduating already / 已标记为毕业企业")
    row = Graduation(
        tenant_id=caller.tenant,
        enterprise_id=ent.id or 0,
        note=data.note,
        expected=data.expected,
        marked_by=caller.key_id,
    )
    session.add(row)
    session.flush()
    audit.record(session, caller, "graduation.mark", record_type="enterprise", record_id=ent.id)
    return row


def unmark(session: Session, *, caller: Caller, enterprise_id: int) -> None:
    authorize(caller, "delete", "graduation", owner_tenant=caller.tenant)
    row = session.exec(
        select(Graduation).where(
            Graduation.enterprise_id == enterprise_id, Graduation.tenant_id == caller.tenant
        )
    ).first()
    if row is None:
        raise NotFound(f"enterprise {enterprise_id} is not marked as graduating")
    session.delete(row)
    session.flush()
    audit.record(session, caller, "graduation.unmark", record_type="enterprise", record_id=enterprise_id)


def listing(session: Session, *, caller: Caller) -> list[GraduationPublic]:
    authorize(caller, "read", "graduation", owner_tenant=caller.tenant)
    rows = list(
        session.exec(select(Graduation).where(Graduation.tenant_id == caller.tenant).order_by(Graduation.id))
    )
    names = dict(
        session.exec(
            select(Enterprise.id, Enterprise.name).where(
                col(Enterprise.id).in_([g.enterprise_id for g in rows])
            )
        ).all()
    )
    return [
        GraduationPublic.model_validate(
            g.model_dump() | {"enterprise": names.get(g.enterprise_id), "marked_at": as_utc(g.marked_at)}
        )
        for g in rows
    ]


def _park_counts(session: Session, link_ids: Sequence[int]) -> Counter:
    """Park enterprises (not prospects) placed on each link, officers' exclusions left out."""
    if not link_ids:
        return Counter()
    stmt = (
        select(ChainPlacement.link_id, func.count())
        .join(Enterprise, Enterprise.id == ChainPlacement.record_id)
        .where(
            col(ChainPlacement.link_id).in_(list(link_ids)),
            ChainPlacement.record_type == "enterprise",
            ChainPlacement.tenant_id == Enterprise.tenant_id,
            func.coalesce(ChainPlacement.decision, "") != "excluded",
            func.coalesce(Enterprise.tier, "") != "prospect",
        )
        .group_by(ChainPlacement.link_id)
    )
    return Counter(dict(session.exec(stmt).all()))


def _fits(
    session: Session,
    engine: MatchEngine,
    tenant: str,
    chains: Sequence[IndustryChain],
    enterprise_ids: Sequence[int],
) -> dict[int, dict[int, list[LinkFit]]]:
    """enterprise id -> chain id -> its fit with each link of the chain, best first."""
    by_id = {c.id: c for c in chains}
    links = (
        list(session.exec(select(ChainLink).where(col(ChainLink.chain_id).in_(list(by_id))))) if by_id else []
    )
    counts = _park_counts(session, [x.id or 0 for x in links])
    side = engine.indexer.demand_side()
    ids = np.asarray(sorted(index_key("enterprise", i) for i in enterprise_ids), dtype=np.int64)
    ranker = engine.ranker_for(tenant)
    out: dict[int, dict[int, list[LinkFit]]] = {}
    for q in link_queries(engine, links):
        chain = by_id[q.link.chain_id]
        n = counts.get(q.link.id or 0, 0)
        for c in score(engine, side, q, ids, ranker):
            _, eid = record_key("demand", c.id)
            fit = LinkFit(
                link_id=q.link.id or 0,
                key=q.link.key,
                name_zh=q.link.name_zh,
                name_en=q.link.name_en,
                stage=q.link.stage,
                score=round(c.score, 4),
                fits=c.score >= chain.min_score,
                gap=n < chain.gap_threshold,
                park_enterprises=n,
                explanation=explanation(engine, side, q, c),
            )
            out.setdefault(eid, {}).setdefault(chain.id or 0, []).append(fit)
    for per in out.values():
        for fits in per.values():
            fits.sort(key=lambda f: (-f.score, f.link_id))
    return out


def relay(
    session: Session, *, caller: Caller, engine: MatchEngine, enterprise_id: int, links_per_chain: int = 5
) -> RelayPublic:
    """The shared chains (of every park that opted in) and their links the enterprise fits, best first."""
    authorize(caller, "read", "graduation", owner_tenant=caller.tenant)
    ent = records.get_enterprise(session, caller=caller, id=enterprise_id)
    authorize(
        caller, "read", "graduation", owner_tenant=ent.tenant_id, record=f"enterprise with id {enterprise_id}"
    )
    graduating = (
        session.exec(select(Graduation.id).where(Graduation.enterprise_id == ent.id)).first() is not None
    )
    chains = list(session.exec(select(IndustryChain).where(IndustryChain.shared == True)))  # noqa: E712
    fits = _fits(session, engine, caller.tenant, chains, [ent.id or 0]).get(ent.id or 0, {})
    out = []
    for chain in chains:
        got = fits.get(chain.id or 0, [])
        if any(f.fits for f in got):
            out.append(
                ChainFit(
                    chain_id=chain.id or 0,
                    park=chain.tenant_id,
                    name_zh=chain.name_zh,
                    name_en=chain.name_en,
                    best=got[0].score,
                    links=[f for f in got if f.fits][:links_per_chain],
                )
            )
    out.sort(key=lambda c: (-c.best, c.chain_id))
    message = None if out else "没有共享产业链的环节与之匹配 / no link of a shared chain fits it"
    return RelayPublic(enterprise_id=ent.id or 0, graduating=graduating, chains=out, message=message)


def graduates(
    session: Session, *, caller: Caller, engine: MatchEngine, chain_id: int | None = None
) -> list[GraduateFit]:
    """For a park: the graduating enterprises it may see (others' public ones, its own) that fit its chains."""
    authorize(caller, "read", "chain", owner_tenant=caller.tenant)
    stmt = select(IndustryChain).where(IndustryChain.tenant_id == caller.tenant)
    if chain_id is not None:
        stmt = stmt.where(IndustryChain.id == chain_id)
    chains = list(session.exec(stmt))
    if chain_id is not None and not chains:
        raise NotFound(f"no chain with id {chain_id}")
    rows = session.exec(
        select(Graduation, Enterprise)
        .join(Enterprise, Enterprise.id == Graduation.enterprise_id)
        .where(visible_clause(Enterprise, caller.tenant))
        .order_by(Graduation.id)
        .limit(MAX_GRADUATES)
    ).all()
    fits = _fits(session, engine, caller.tenant, chains, [e.id or 0 for _, e in rows])
    out = []
    for g, e in rows:
        links = [f for per in fits.get(e.id or 0, {}).values() for f in per if f.fits]
        if links:
            links.sort(key=lambda f: (-f.score, f.link_id))
            out.append(
                GraduateFit(
                    enterprise_id=e.id or 0,
                    name=e.name,
                    incubator=g.tenant_id,
                    expected=g.expected,
                    best=links[0].score,
                    links=links[:5],
                )
            )
    out.sort(key=lambda x: (-x.best, x.enterprise_id))
    return out
