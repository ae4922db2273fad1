"""Tenant-scoped create, get, update and delete of one enterprise, need or resource, under the shared write rules.

Rows are written under the caller's tenant, stamped with the key that created them; who may write which row is
domain/permissions.py's matrix. A private row of another tenant, and any row of another tenant on a write, reads
as "not found" so that its existence is never revealed. Change events are queued on the session and
reach the hub only after the transaction commits (a rolled-back write notifies nobody)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from matcher.domain.park_tables import ChainPlacement, Graduation
from matcher.domain.permissions import authorize
from matcher.domain.schemas import EnterpriseCreate, EnterpriseUpdate, NeedCreate, NeedUpdate, ResourceUpdate
from matcher.domain.tables import Curation, DigestLog, Enterprise, Need, Resource
from matcher.domain.visibility import visible_to
from matcher.errors import Conflict, NotFound, invalid
from matcher.store import audit, tiers
from matcher.store.db import valid_id
from matcher.store.events import ChangeHub, notify_after_commit
from matcher.store.keys import Caller, ensure_tenant
from matcher.store.rules import (
    ResourceCreateModel,
    Row,
    apply_changes,
    differences,
    new_resource,
    normalize_changes,
    reject_nul,
)

R = TypeVar("R", Enterprise, Need, Resource)

# the hub method and arguments that announce a created or updated row
_CHANGED: dict[type[Row], Callable[[Any], tuple[Any, ...]]] = {
    Resource: lambda row: ("resources_changed", [row]),
    Enterprise: lambda row: ("demand_changed", [], [row]),
    Need: lambda row: ("demand_changed", [row], []),
}


def _noun(model: type[Row]) -> str:
    return model.__name__.lower()


def _record_type(row: Row) -> str:
    """The row's record type in the permission matrix: a resource's kind, else its table."""
    return row.kind if isinstance(row, Resource) else _noun(type(row))


def _fetch(session: Session, model: type[R], caller: Caller, id: int, action: str) -> R:
    """The row if the caller may see it and `action` it; NotFound (one message for missing and hidden rows) or
    Forbidden otherwise."""
    if model is not Resource:
        # the record type is known before the lookup: a role that may never do this is refused before any read
        authorize(caller, action, _noun(model), owner_tenant=None)
    row = session.get(model, id) if valid_id(id) else None
    if row is None or not visible_to(row, caller.tenant):
        raise NotFound(f"no {_noun(model)} with id {id}")
    authorize(
        caller,
        action,
        _record_type(row),
        owner_tenant=row.tenant_id,
        created_by=row.created_by,
        record=f"{_noun(model)} with id {id}",
    )
    return row


def _external_id_taken(external_id: str, by: str) -> Conflict:
    return Conflict(
        f"external_id {external_id!r} is already used by {by} in your tenant",
        errors=[{"field": "external_id", "message": "already used", "type": "conflict"}],
    )


def _check_external_id(
    session: Session,
    model: type[Resource | Enterprise],
    caller: Caller,
    external_id: str | None,
    own_id: int | None,
) -> None:
    if external_id is None:
        return
    found = session.exec(
        select(model.id).where(model.tenant_id == caller.tenant, model.external_id == external_id)
    ).first()
    if found is not None and found != own_id:
        raise _external_id_taken(external_id, f"{_noun(model)} {found}")


def _flush(session: Session, row: Row) -> None:
    """Flush a write; a unique constraint lost to a concurrent writer becomes a 409 (the session is rolled back)."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        noun = _noun(type(row))
        external_id = getattr(row, "external_id", None)
        if external_id is not None:
            raise _external_id_taken(external_id, f"another {noun}") from exc
        raise Conflict(f"the {noun} conflicts with a concurrent write; retry the request") from exc


def _finish(session: Session, commit: bool) -> None:
    if commit:
        session.commit()


def _insert(session: Session, caller: Caller, row: R, hub: ChangeHub | None, commit: bool) -> R:
    _flush(session, row)
    audit.record(session, caller, "create", record_type=_noun(type(row)), record_id=row.id)
    notify_after_commit(session, hub, *_CHANGED[type(row)](row))
    _finish(session, commit)
    return row


def _update(
    session: Session,
    model: type[R],
    caller: Caller,
    id: int,
    data: BaseModel,
    hub: ChangeHub | None,
    commit: bool,
) -> R:
    """Apply the fields given, as the table's rules say (see rules.UpdateRules); a new external_id must be free."""
    row = _fetch(session, model, caller, id, "update")
    changes = normalize_changes(row, data.model_dump(exclude_unset=True))
    if changes.get("external_id") is not None:
        _check_external_id(session, model, caller, changes["external_id"], row.id)  # type: ignore[arg-type]
    diff = differences(row, changes)
    if apply_changes(row, diff):
        _flush(session, row)
        summary = {"fields": sorted(diff)}
        audit.record(session, caller, "update", record_type=_noun(model), record_id=row.id, summary=summary)
        notify_after_commit(session, hub, *_CHANGED[model](row))
    _finish(session, commit)
    return row


def _remove(
    session: Session,
    caller: Caller,
    row: Row,
    hub: ChangeHub | None,
    commit: bool,
    summary: dict[str, Any],
    method: str,
    *args: Any,
) -> None:
    """Delete the row; its audit event is written in the same transaction and outlives it."""
    record_id = row.id
    session.delete(row)
    session.flush()
    audit.record(
        session, caller, "delete", record_type=_noun(type(row)), record_id=record_id, summary=summary
    )
    notify_after_commit(session, hub, method, *args)
    _finish(session, commit)


def _forget_placements(session: Session, record_type: str, ids: list[int]) -> None:
    """A deleted record leaves the chains it sat on (officers' decisions about it too); event plans and the tier
    history keep naming it, as the audit trail does."""
    if ids:
        session.exec(
            delete(ChainPlacement).where(
                ChainPlacement.record_type == record_type, col(ChainPlacement.record_id).in_(ids)
            )
        )


# ---------------------------------------------------------------- resources


def create_resource(
    session: Session,
    *,
    caller: Caller,
    data: ResourceCreateModel,
    hub: ChangeHub | None = None,
    commit: bool = True,
) -> Resource:
    """Store a resource: provider from its details, language detected when absent, external_id unique per tenant."""
    authorize(caller, "create", data.kind, owner_tenant=caller.tenant, created_by=caller.key_id)
    row = new_resource(data, caller.tenant, created_by=caller.key_id)
    _check_external_id(session, Resource, caller, row.external_id, None)
    ensure_tenant(session, caller.tenant)
    return _insert(session, caller, row, hub, commit)


def get_resource(session: Session, *, caller: Caller, id: int) -> Resource:
    return _fetch(session, Resource, caller, id, "read")


def update_resource(
    session: Session,
    *,
    caller: Caller,
    id: int,
    data: ResourceUpdate,
    hub: ChangeHub | None = None,
    commit: bool = True,
) -> Resource:
    """Apply the fields given; `details` is merged with the stored details and re-validated for the kind."""
    return _update(session, Resource, caller, id, data, hub, commit)


def delete_resource(
    session: Session, *, caller: Caller, id: int, hub: ChangeHub | None = None, commit: bool = True
) -> None:
    row = _fetch(session, Resource, caller, id, "delete")
    _forget_placements(session, "resource", [id])
    _remove(session, caller, row, hub, commit, {}, "resources_removed", [id])


# ---------------------------------------------------------------- enterprises


def create_enterprise(
    session: Session,
    *,
    caller: Caller,
    data: EnterpriseCreate,
    hub: ChangeHub | None = None,
    commit: bool = True,
    tier_source: str = "create",
) -> Enterprise:
    authorize(caller, "create", "enterprise", owner_tenant=caller.tenant, created_by=caller.key_id)
    fields = data.model_dump()
    reject_nul(fields)
    _check_external_id(session, Enterprise, caller, fields["external_id"], None)
    ensure_tenant(session, caller.tenant)
    row = Enterprise(**fields, tenant_id=caller.tenant, created_by=caller.key_id)
    _insert(session, caller, row, hub, commit=False)
    tiers.tier_changed(session, caller, row, None, source=tier_source)
    _finish(session, commit)
    return row


def get_enterprise(session: Session, *, caller: Caller, id: int) -> Enterprise:
    return _fetch(session, Enterprise, caller, id, "read")


def update_enterprise(
    session: Session,
    *,
    caller: Caller,
    id: int,
    data: EnterpriseUpdate,
    hub: ChangeHub | None = None,
    commit: bool = True,
    tier_reason: str | None = None,
    tier_source: str = "update",
) -> Enterprise:
    """Apply the fields given; a change of tier is recorded (with `tier_reason`) and its policy applied."""
    before = session.get(Enterprise, id) if valid_id(id) else None
    old_tier = before.tier if before is not None else None
    row = _update(session, Enterprise, caller, id, data, hub, commit=False)
    tiers.tier_changed(session, caller, row, old_tier, reason=tier_reason, source=tier_source)
    _finish(session, commit)
    return row


def delete_enterprise(
    session: Session, *, caller: Caller, id: int, hub: ChangeHub | None = None, commit: bool = True
) -> list[int]:
    """Delete an enterprise with its needs, digest history and curation; returns the ids of the needs removed with it."""
    row = _fetch(session, Enterprise, caller, id, "delete")
    need_ids = list(session.exec(select(Need.id).where(Need.enterprise_id == id)))
    session.exec(delete(Need).where(Need.enterprise_id == id))
    session.exec(delete(DigestLog).where(DigestLog.enterprise_id == id))
    session.exec(delete(Curation).where(Curation.enterprise_id == id))
    session.exec(delete(Graduation).where(Graduation.enterprise_id == id))
    _forget_placements(session, "enterprise", [id])
    _forget_placements(session, "need", need_ids)
    summary = {"needs_removed": len(need_ids)}
    _remove(session, caller, row, hub, commit, summary, "demand_removed", need_ids, [id])
    return need_ids


# ---------------------------------------------------------------- needs


def create_need(
    session: Session, *, caller: Caller, data: NeedCreate, hub: ChangeHub | None = None, commit: bool = True
) -> Need:
    """Store a need of one of the caller's own enterprises."""
    authorize(caller, "create", "need", owner_tenant=caller.tenant, created_by=caller.key_id)
    fields = data.model_dump()
    reject_nul(fields)
    enterprise = session.get(Enterprise, data.enterprise_id) if valid_id(data.enterprise_id) else None
    if enterprise is None or enterprise.tenant_id != caller.tenant:
        raise invalid(
            "enterprise_id", f"no enterprise with id {data.enterprise_id} in your tenant", "not_found"
        )
    row = Need(**fields, tenant_id=caller.tenant, created_by=caller.key_id)
    return _insert(session, caller, row, hub, commit)


def get_need(session: Session, *, caller: Caller, id: int) -> Need:
    return _fetch(session, Need, caller, id, "read")


def update_need(
    session: Session,
    *,
    caller: Caller,
    id: int,
    data: NeedUpdate,
    hub: ChangeHub | None = None,
    commit: bool = True,
) -> Need:
    return _update(session, Need, caller, id, data, hub, commit)


def delete_need(
    session: Session, *, caller: Caller, id: int, hub: ChangeHub | None = None, commit: bool = True
) -> None:
    row = _fetch(session, Need, caller, id, "delete")
    _forget_placements(session, "need", [id])
    _remove(session, caller, row, hub, commit, {}, "demand_removed", [id], [])
