"""The outcome funnel a park reads: what was shown, clicked, contacted, accepted, closed as deals; why matches were
rejected; which open needs have no good match (what to recruit for); which resources never come up."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from matcher.domain.tables import Feedback, Impression, Need, Resource
from matcher.matching.engine import MatchEngine
from matcher.matching.query import MatchQuery

STAGES = ("shown", "clicked", "contacted", "accepted", "deals")
_ACTION_STAGE = {"clicked": "clicked", "contacted": "contacted", "accepted": "accepted", "deal": "deals"}


def _empty() -> dict[str, Any]:
    return {s: 0 for s in STAGES} | {"deal_amount": 0.0}


def _month(dt: datetime | None) -> str:
    return f"{dt:%Y-%m}" if dt is not None else "unknown"


def funnel(
    session: Session,
    *,
    tenant: str | None = None,
    threshold: float = 0.5,
    engine: MatchEngine | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """Counts by kind, by month and by both, rejection reasons, needs without a good match, resources never matched.

    `tenant` scopes everything to one tenant (None: all tenants, for the CLI). With `engine`, needs that were
    never served are matched live so that their best score is known; otherwise they count as unmatched."""
    resources = list(session.exec(select(Resource.id, Resource.kind, Resource.title, Resource.tenant_id)))
    kinds = {r[0]: r[1] for r in resources}
    by_kind: dict[str, dict[str, Any]] = defaultdict(_empty)
    by_month: dict[str, dict[str, Any]] = defaultdict(_empty)
    by_kind_month: dict[str, dict[str, Any]] = defaultdict(_empty)  # "kind month" -> counts
    ever_matched, best_by_need = _count_shown(session, tenant, kinds, by_kind, by_month, by_kind_month)
    reasons = _count_outcomes(session, tenant, kinds, by_kind, by_month, by_kind_month)
    gaps = _unserved_needs(session, tenant, best_by_need, threshold, engine)
    own = [r for r in resources if tenant is None or r[3] == tenant]
    never = [{"resource_id": r[0], "kind": r[1], "title": r[2]} for r in own if r[0] not in ever_matched]

    def rate(b: dict[str, Any]) -> dict[str, Any]:
        shown = b["shown"] or 0
        return b | {"acceptance_rate": round(b["accepted"] / shown, 4) if shown else None}

    total = _empty()
    for b in by_kind.values():
        for k in total:
            total[k] += b[k]
    return {
        "threshold": threshold,
        "total": rate(total),
        "by_kind": {k: rate(v) for k, v in sorted(by_kind.items())},
        "by_month": {k: rate(v) for k, v in sorted(by_month.items())},
        "by_kind_month": _nested(by_kind_month, rate),
        "rejection_reasons": dict(reasons.most_common()),
        "unmatched_needs": {"count": len(gaps), "items": gaps[:limit]},
        "never_matched_resources": {"count": len(never), "items": never[:limit]},
    }


Buckets = dict[str, dict[str, Any]]


def _nested(flat: Buckets, rate: Any) -> dict[str, dict[str, Any]]:
    """{"kind month": counts} as {kind: {month: counts}}, both sorted."""
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for key in sorted(flat):
        kind, month = key.split(" ", 1)
        out[kind][month] = rate(flat[key])
    return dict(out)


def _count_shown(
    session: Session,
    tenant: str | None,
    kinds: dict[int, str],
    by_kind: Buckets,
    by_month: Buckets,
    by_kind_month: Buckets,
) -> tuple[set[int], dict[int, float]]:
    """Impressions, once per request and resource: the 'shown' counts; returns the resources ever shown and
    each need's best shown score."""
    iq = select(
        Impression.request_id,
        Impression.resource_id,
        Impression.need_id,
        Impression.score,
        Impression.created_at,
    )
    if tenant is not None:
        iq = iq.where(Impression.tenant_id == tenant)
    shown_pairs: set[tuple[str, int]] = set()
    ever_matched: set[int] = set()
    best_by_need: dict[int, float] = {}
    for request_id, resource_id, need_id, score, created_at in session.exec(iq):
        if (request_id, resource_id) in shown_pairs:
            continue
        shown_pairs.add((request_id, resource_id))
        ever_matched.add(resource_id)
        kind, month = kinds.get(resource_id, "deleted"), _month(created_at)
        by_kind[kind]["shown"] += 1
        by_month[month]["shown"] += 1
        by_kind_month[f"{kind} {month}"]["shown"] += 1
        if need_id is not None:
            best_by_need[need_id] = max(best_by_need.get(need_id, 0.0), float(score))
    return ever_matched, best_by_need


def _count_outcomes(
    session: Session,
    tenant: str | None,
    kinds: dict[int, str],
    by_kind: Buckets,
    by_month: Buckets,
    by_kind_month: Buckets,
) -> Counter[str]:
    """Feedback into the funnel stages (one count per match and action) and deal amounts; returns the
    rejection reasons."""
    fq = select(Feedback)
    if tenant is not None:
        fq = fq.where(Feedback.tenant_id == tenant)
    reasons: Counter[str] = Counter()
    counted: set[tuple[str | None, int, str]] = set()
    for fb in session.exec(fq):
        if fb.action == "rejected":
            reasons[fb.reason or "unspecified"] += 1
        stage = _ACTION_STAGE.get(fb.action)
        key = (fb.request_id, fb.resource_id, fb.action)
        if stage is None or key in counted:  # one count per match and action, however often it was sent
            continue
        counted.add(key)
        kind, month = kinds.get(fb.resource_id, "deleted"), _month(fb.created_at)
        for bucket in (by_kind[kind], by_month[month], by_kind_month[f"{kind} {month}"]):
            bucket[stage] += 1
            if fb.action == "deal" and fb.amount:
                bucket["deal_amount"] += float(fb.amount)
    return reasons


def _unserved_needs(
    session: Session,
    tenant: str | None,
    best_by_need: dict[int, float],
    threshold: float,
    engine: MatchEngine | None,
) -> list[dict[str, Any]]:
    """Open needs whose best match (shown, or found live with `engine`) is below `threshold`, worst first."""
    nq = select(Need).where(Need.status == "open")
    if tenant is not None:
        nq = nq.where(Need.tenant_id == tenant)
    gaps = []
    for need in session.exec(nq):
        best = best_by_need.get(need.id)
        if best is None and engine is not None:
            best = _live_best(engine, need, tenant or need.tenant_id)
        if best is None or best < threshold:
            gaps.append(
                {
                    "need_id": need.id,
                    "title": need.title,
                    "kinds": list(need.kinds or []),
                    "industries": list(need.industries or []),
                    "best_score": None if best is None else round(best, 4),
                }
            )
    gaps.sort(key=lambda g: (g["best_score"] is not None, g["best_score"] or 0.0))
    return gaps


def _live_best(engine: MatchEngine, need: Need, tenant: str) -> float | None:
    try:
        out = engine.match(MatchQuery(need_id=need.id, k=1, min_score=0.0, explain=False), tenant=tenant)
    except Exception:  # noqa: BLE001 - a need the engine cannot match is reported as unmatched
        return None
    return out.candidates[0].score if out.candidates else 0.0
