"""The public shapes of stored rows: what a caller of the row's own tenant, or of another, is shown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import object_session

from matcher.domain.schemas import EnterprisePublic, NeedPublic, ResourcePublic
from matcher.domain.tables import Enterprise, Need, Resource, as_utc
from matcher.domain.taxonomy import default_taxonomy
from matcher.domain.visibility import visible_to
from matcher.store.keys import Caller


def _unknown(tags: Iterable[str]) -> list[str]:
    return default_taxonomy().unknown(tags)


def _public_data(row: Need | Resource, caller: Caller, private: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row's fields as its public view shows them; the tenant and the `private` fields only to its own tenant."""
    own = row.tenant_id == caller.tenant
    data = row.model_dump()
    data.update(
        unknown_industries=_unknown(row.industries),
        tenant=row.tenant_id if own else None,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )
    if not own:
        data.update(dict.fromkeys(private))
    return data


def to_public_resource(row: Resource, caller: Caller) -> ResourcePublic:
    return ResourcePublic.model_validate(_public_data(row, caller, private=("external_id",)))


def to_public_need(row: Need, caller: Caller, enterprise: Enterprise | None = None) -> NeedPublic:
    """Another tenant's need names its enterprise only when that enterprise is visible to the caller too: a public
    need of a private enterprise is shown without even the enterprise's id. `enterprise` is the need's enterprise;
    when not given it is read through the row's session (none: the id is withheld)."""
    data = _public_data(row, caller)
    if row.tenant_id != caller.tenant:
        if enterprise is None:
            session = object_session(row)
            enterprise = session.get(Enterprise, row.enterprise_id) if session is not None else None
        if (
            enterprise is None
            or enterprise.id != row.enterprise_id
            or not visible_to(enterprise, caller.tenant)
        ):
            data["enterprise_id"] = None
    return NeedPublic.model_validate(data)


def to_public_enterprise(row: Enterprise, caller: Caller) -> EnterprisePublic:
    """Another tenant sees the public profile only: never contact, digest preferences, import key or tenant."""
    own = row.tenant_id == caller.tenant
    data = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "industries": row.industries,
        "unknown_industries": _unknown(row.industries),
        "region": row.region,
        "stage": row.stage,
        "tier": row.tier,
        "size": row.size,
        "visibility": row.visibility,
        "created_at": as_utc(row.created_at),
        "updated_at": as_utc(row.updated_at),
    }
    if own:
        data.update(
            external_id=row.external_id,
            email=row.email,
            digest_frequency=row.digest_frequency,
            digest_kinds=row.digest_kinds,
            language=row.language,
            unsubscribed=row.unsubscribed,
            tenant=row.tenant_id,
        )
    return EnterprisePublic.model_validate(data)
