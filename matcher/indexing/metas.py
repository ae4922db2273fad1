"""Catalog rows (`Meta`) built from store records: what fit and the hard filters read of each side."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from matcher.domain.tables import Enterprise, Need, Resource, as_utc
from matcher.domain.taxonomy import Taxonomy
from matcher.domain.visibility import is_public
from matcher.indexing.catalog import Meta
from matcher.indexing.demand_keys import DEMAND_ENTERPRISE, DEMAND_NEED, demand_key


def stamp(row: Resource | Need | Enterprise) -> float:
    """A record's version for the indexes: its update time in unix seconds."""
    ts = as_utc(row.updated_at)
    return ts.timestamp() if ts else 0.0


def _as_date(v: object) -> date | None:
    if v is None or isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError:
        return None


def resource_meta(r: Resource, taxonomy: Taxonomy) -> Meta:
    d = r.details or {}
    deadline = _as_date(d.get("deadline")) if r.kind == "scenario" else None
    expires = min((x for x in (r.valid_until, deadline) if x is not None), default=None)
    return Meta(
        id=r.id,
        kind=r.kind,
        tenant=r.tenant_id,
        public=is_public(r.visibility),
        active=r.status == "active",
        title=r.title,
        industries=frozenset(taxonomy.expand(r.industries or [])),
        own_industries=tuple(r.industries or ()),
        region=r.region,
        expires=expires,
        deadline=deadline,
        stages=tuple(d.get("stages") or ()),
        ticket_min=d.get("ticket_min"),
        ticket_max=d.get("ticket_max"),
        budget=d.get("budget"),
        trl=d.get("trl"),
        provider=r.provider,
        updated=stamp(r),
        extra={"price": d.get("price")},
    )


def demand_metas(needs: Iterable[Need], enterprises: Iterable[Enterprise], taxonomy: Taxonomy) -> list[Meta]:
    """Rows of the demand catalog, keyed by `demand_key`."""
    out = []
    for n in needs:
        out.append(
            Meta(
                id=demand_key(DEMAND_NEED, n.id),
                kind="need",
                tenant=n.tenant_id,
                public=is_public(n.visibility),
                active=n.status == "open",
                title=n.title,
                industries=frozenset(taxonomy.expand(n.industries or [])),
                own_industries=tuple(n.industries or ()),
                region=n.region,
                expires=n.deadline,
                amount=n.amount,
                trl_min=n.trl_min,
                kinds_sought=tuple(n.kinds or ()),
                updated=stamp(n),
                extra={"enterprise_id": n.enterprise_id},
            )
        )
    for e in enterprises:
        out.append(
            Meta(
                id=demand_key(DEMAND_ENTERPRISE, e.id),
                kind="enterprise",
                tenant=e.tenant_id,
                public=is_public(e.visibility),
                active=True,
                title=e.name,
                industries=frozenset(taxonomy.expand(e.industries or [])),
                own_industries=tuple(e.industries or ()),
                region=e.region,
                expires=None,
                stage=e.stage,
                updated=stamp(e),
                extra={"enterprise_id": e.id},
            )
        )
    return out
