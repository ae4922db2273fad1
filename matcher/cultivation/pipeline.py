"""The cultivation pipeline of a park: moving an enterprise between tiers (recorded with who, when and why by
store/tiers.py), the history of moves, and the policy of each tier."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from matcher.domain.cultivation_schemas import PolicyIn, PolicyPublic, TierMove
from matcher.domain.park_tables import TierPolicy, TierTransition
from matcher.domain.permissions import authorize
from matcher.domain.schemas import EnterpriseUpdate
from matcher.domain.tables import Enterprise, as_utc, utcnow
from matcher.errors import invalid
from matcher.store import audit, records
from matcher.store.events import ChangeHub
from matcher.store.keys import Caller
from matcher.store.tiers import TIER_LABELS, TIERS

MAX_HISTORY = 1000


def move(
    session: Session, *, caller: Caller, enterprise_id: int, data: TierMove, hub: ChangeHub | None = None
) -> tuple[Enterprise, TierTransition | None]:
    """Put an enterprise of the park in a tier (or out of the pipeline); (the enterprise, the move or None when
    it was in that tier already). Not committed."""
    authorize(caller, "update", "cultivation", owner_tenant=caller.tenant)
    old = records.get_enterprise(session, caller=caller, id=enterprise_id).tier
    row = records.update_enterprise(
        session,
        caller=caller,
        id=enterprise_id,
        data=EnterpriseUpdate(tier=data.tier),
        hub=hub,
        commit=False,
        tier_reason=data.reason,
        tier_source="api",
    )
    if row.tier == old:
        return row, None
    session.flush()
    stmt = (
        select(TierTransition)
        .where(TierTransition.enterprise_id == row.id)
        .order_by(col(TierTransition.id).desc())
    )
    return row, session.exec(stmt).first()


def history(
    session: Session,
    *,
    caller: Caller,
    enterprise_id: int | None = None,
    since: datetime | None = None,
    limit: int = 200,
) -> list[TierTransition]:
    """Moves of the park's enterprises, newest first (one enterprise's, when given)."""
    authorize(caller, "read", "cultivation", owner_tenant=caller.tenant)
    if enterprise_id is not None:
        records.get_enterprise(session, caller=caller, id=enterprise_id)  # 404 for one the caller cannot see
    if not 1 <= limit <= MAX_HISTORY:
        raise invalid("limit", f"must be between 1 and {MAX_HISTORY}")
    stmt = select(TierTransition).where(TierTransition.tenant_id == caller.tenant)
    if enterprise_id is not None:
        stmt = stmt.where(TierTransition.enterprise_id == enterprise_id)
    if since is not None:
        stmt = stmt.where(TierTransition.at >= since)
    return list(session.exec(stmt.order_by(col(TierTransition.id).desc()).limit(limit)))


def _view(tier: str, p: TierPolicy | None, applied: int | None = None) -> PolicyPublic:
    zh, en = TIER_LABELS[tier]
    if p is None:
        return PolicyPublic(tier=tier, zh=zh, en=en, defined=False)
    return PolicyPublic(
        tier=tier,
        zh=zh,
        en=en,
        defined=True,
        digest_frequency=p.digest_frequency,
        digest_kinds=list(p.digest_kinds),
        follow_up=p.follow_up,
        follow_up_min_score=p.follow_up_min_score,
        follow_up_days=p.follow_up_days,
        applied_to=applied,
        updated_at=as_utc(p.updated_at),
    )


def policies(session: Session, *, caller: Caller) -> list[PolicyPublic]:
    authorize(caller, "read", "cultivation", owner_tenant=caller.tenant)
    rows = {p.tier: p for p in session.exec(select(TierPolicy).where(TierPolicy.tenant_id == caller.tenant))}
    return [_view(t, rows.get(t)) for t in TIERS]


def set_policy(session: Session, *, caller: Caller, tier: str, data: PolicyIn) -> PolicyPublic:
    """The tier's policy; with `apply_now`, the digest preferences of the enterprises in the tier follow it."""
    authorize(caller, "update", "cultivation", owner_tenant=caller.tenant)
    if tier not in TIERS:
        raise invalid("tier", f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}", "enum")
    stmt = select(TierPolicy).where(TierPolicy.tenant_id == caller.tenant, TierPolicy.tier == tier)
    row = session.exec(stmt).first() or TierPolicy(tenant_id=caller.tenant, tier=tier)
    for name in ("digest_frequency", "follow_up", "follow_up_days"):
        setattr(row, name, getattr(data, name))
    row.digest_kinds = list(data.digest_kinds)
    row.follow_up_min_score = float(data.follow_up_min_score)
    row.updated_by, row.updated_at = caller.key_id, utcnow()
    session.add(row)
    applied = None
    if data.apply_now:
        # digest preferences only: no indexed text changes, so no change event and updated_at stays
        result = session.exec(  # type: ignore[call-overload]
            update(Enterprise)
            .where(Enterprise.tenant_id == caller.tenant, Enterprise.tier == tier)
            .values(digest_frequency=data.digest_frequency, digest_kinds=list(data.digest_kinds))
        )
        applied = int(result.rowcount or 0)
    session.flush()
    summary = {"tier": tier, "follow_up": data.follow_up, "applied_to": applied}
    audit.record(
        session, caller, "cultivation.policy", record_type="cultivation", record_id=tier, summary=summary
    )
    return _view(tier, row, applied)
