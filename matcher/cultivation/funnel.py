"""How the pipeline stands: enterprises per tier (overall and per link of a chain), moves between tiers over a
period, and the matches officers follow up for the tiers whose policy asks for it."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from matcher.chains.store import get_chain, links_of
from matcher.domain.cultivation_schemas import FollowUp, FunnelPublic
from matcher.domain.park_tables import ChainPlacement, TierPolicy, TierTransition
from matcher.domain.permissions import authorize
from matcher.domain.tables import Enterprise, Feedback, Impression, Need, Resource, as_utc, utcnow
from matcher.store.keys import Caller
from matcher.store.tiers import TIER_LABELS, TIERS

NONE = "none"


def funnel(
    session: Session, *, caller: Caller, since: datetime | None = None, chain_id: int | None = None
) -> FunnelPublic:
    authorize(caller, "read", "cultivation", owner_tenant=caller.tenant)
    since = since or utcnow() - timedelta(days=90)
    rows = session.exec(
        select(Enterprise.tier, func.count())
        .where(Enterprise.tenant_id == caller.tenant)
        .group_by(Enterprise.tier)
    ).all()
    tiers = dict.fromkeys([*TIERS, NONE], 0)
    for tier, n in rows:
        tiers[tier or NONE] = int(n)
    moves = Counter()
    stmt = select(TierTransition.from_tier, TierTransition.to_tier).where(
        TierTransition.tenant_id == caller.tenant, TierTransition.at >= since
    )
    for a, b in session.exec(stmt):
        moves[f"{a or NONE}->{b or NONE}"] += 1
    out = FunnelPublic(
        tiers=tiers,
        labels={t: {"zh": zh, "en": en} for t, (zh, en) in TIER_LABELS.items()}
        | {NONE: {"zh": "未入库", "en": "outside"}},
        moves=dict(moves),
        since=as_utc(since) or since,
        chain_id=chain_id,
    )
    if chain_id is not None:
        out.links = _per_link(session, caller, chain_id)
    return out


def _per_link(session: Session, caller: Caller, chain_id: int) -> list[dict]:
    """Per link of the chain: how many of the enterprises on it are in each tier."""
    chain = get_chain(session, caller=caller, id=chain_id)
    stmt = (
        select(ChainPlacement.link_id, Enterprise.tier, func.count())
        .join(Enterprise, Enterprise.id == ChainPlacement.record_id)
        .where(
            ChainPlacement.chain_id == chain.id,
            ChainPlacement.record_type == "enterprise",
            or_(col(ChainPlacement.decision).is_(None), ChainPlacement.decision != "excluded"),
            Enterprise.tenant_id == caller.tenant,
        )
        .group_by(ChainPlacement.link_id, Enterprise.tier)
    )
    counts: dict[int, dict[str, int]] = {}
    for link_id, tier, n in session.exec(stmt):
        counts.setdefault(link_id, dict.fromkeys([*TIERS, NONE], 0))[tier or NONE] = int(n)
    return [
        {
            "link_id": x.id,
            "key": x.key,
            "name_zh": x.name_zh,
            "name_en": x.name_en,
            "tiers": counts.get(x.id or 0, dict.fromkeys([*TIERS, NONE], 0)),
        }
        for x in links_of(session, chain.id or 0)
    ]


def follow_ups(session: Session, *, caller: Caller, limit: int = 200) -> list[FollowUp]:
    """Matches served to enterprises of tiers whose policy asks officers to follow up (at least the policy's
    score, within its days) and not yet answered by any feedback: the officers' to-do list, best first."""
    authorize(caller, "read", "cultivation", owner_tenant=caller.tenant)
    pols = [
        p
        for p in session.exec(select(TierPolicy).where(TierPolicy.tenant_id == caller.tenant))
        if p.follow_up
    ]
    out: list[FollowUp] = []
    for p in pols:
        ents = {
            e.id: e
            for e in session.exec(
                select(Enterprise).where(Enterprise.tenant_id == caller.tenant, Enterprise.tier == p.tier)
            )
        }
        if not ents:
            continue
        need_owner = dict(
            session.exec(
                select(Need.id, Need.enterprise_id).where(col(Need.enterprise_id).in_(list(ents)))
            ).all()
        )
        answered = select(Feedback.id).where(
            Feedback.tenant_id == caller.tenant,
            Feedback.request_id == Impression.request_id,
            Feedback.resource_id == Impression.resource_id,
        )
        stmt = select(Impression).where(
            Impression.tenant_id == caller.tenant,
            Impression.created_at >= utcnow() - timedelta(days=p.follow_up_days),
            Impression.score >= p.follow_up_min_score,
            or_(
                col(Impression.enterprise_id).in_(list(ents)),
                col(Impression.need_id).in_(list(need_owner) or [0]),
            ),
            ~answered.exists(),
        )
        shown = list(session.exec(stmt.order_by(col(Impression.score).desc()).limit(limit)))
        res = {
            r.id: r
            for r in session.exec(
                select(Resource).where(col(Resource.id).in_([i.resource_id for i in shown]))
            )
        }
        for imp in shown:
            eid = imp.enterprise_id if imp.enterprise_id in ents else need_owner.get(imp.need_id or 0)
            if eid is None:
                continue
            r = res.get(imp.resource_id)
            out.append(
                FollowUp(
                    enterprise_id=eid,
                    enterprise=ents[eid].name,
                    tier=p.tier,
                    resource_id=imp.resource_id,
                    resource=r.title if r else None,
                    kind=r.kind if r else None,
                    score=round(imp.score, 4),
                    request_id=imp.request_id,
                    need_id=imp.need_id,
                    served_at=as_utc(imp.created_at) or imp.created_at,
                )
            )
    out.sort(key=lambda f: (-f.score, f.served_at))
    return out[:limit]
