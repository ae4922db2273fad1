"""The cultivation tier of an enterprise (摸底 prospect -> 入库培育 incubating -> 精准服务 key account): each change
recorded (who, when, why, how it came), in the transaction of the change, with the tier's policy applied to the
enterprise's digest preferences when its park has set one. Called by the store wherever a tier is written."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session, select

from matcher.domain.park_tables import TierPolicy, TierTransition
from matcher.domain.tables import Enterprise
from matcher.store import audit

if TYPE_CHECKING:
    from matcher.store.keys import Caller

TIERS: tuple[str, ...] = ("prospect", "incubating", "key_account")
TIER_LABELS = {
    "prospect": ("摸底", "prospect"),
    "incubating": ("入库培育", "incubating"),
    "key_account": ("精准服务", "key account"),
}


def policy_of(session: Session, tenant: str, tier: str | None) -> TierPolicy | None:
    if tier is None:
        return None
    stmt = select(TierPolicy).where(TierPolicy.tenant_id == tenant, TierPolicy.tier == tier)
    return session.exec(stmt).first()


def apply_policy(row: Enterprise, policy: TierPolicy) -> bool:
    """The tier's digest frequency and kinds on the enterprise (an unsubscribe stays); whether anything changed."""
    changed = row.digest_frequency != policy.digest_frequency or list(row.digest_kinds) != list(
        policy.digest_kinds
    )
    row.digest_frequency = policy.digest_frequency
    row.digest_kinds = list(policy.digest_kinds)
    return changed


def tier_changed(
    session: Session,
    actor: Caller | audit.Actor,
    row: Enterprise,
    old: str | None,
    *,
    reason: str | None = None,
    source: str = "update",
) -> TierTransition | None:
    """Record `row`'s move from `old` to its current tier (nothing when they are the same)."""
    if row.tier == old:
        return None
    key_id = getattr(actor, "key_id", None)
    # key:12, user:3 (a person in the workbench), operator, or the Actor's name: as the audit trail says it
    name = audit.actor_name(actor)
    t = TierTransition(
        tenant_id=row.tenant_id,
        enterprise_id=row.id or 0,
        from_tier=old,
        to_tier=row.tier,
        reason=reason,
        source=source,
        actor=name,
        actor_key_id=key_id,
    )
    session.add(t)
    policy = policy_of(session, row.tenant_id, row.tier)
    applied = apply_policy(row, policy) if policy is not None else False
    if applied:
        session.add(row)
    summary = {"from": old, "to": row.tier, "source": source, "policy_applied": applied}
    audit.record(session, actor, "tier.change", record_type="enterprise", record_id=row.id, summary=summary)
    return t
