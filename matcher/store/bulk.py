"""Bulk upsert of resources by external_id within one tenant: batched transactions, one change event per batch.

Every record follows the rules of a single create or update (rules.py); a record that breaks one is reported
as rejected and never stops the others. A batch the database refuses is rolled back and retried record by
record, each in its own transaction, so every record is written whole or not at all."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from matcher.domain.permissions import authorize
from matcher.domain.schemas import DETAILS_MODELS
from matcher.domain.tables import Resource
from matcher.errors import MatcherError
from matcher.store import audit
from matcher.store.events import ChangeHub
from matcher.store.keys import Caller, ensure_tenant
from matcher.store.rules import (
    ResourceCreateModel,
    apply_changes,
    differences,
    new_resource,
    normalize_changes,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
UpsertStatus = Literal["created", "updated", "unchanged", "rejected"]


@dataclass(frozen=True)
class ResourceUpsert:
    """One record: its validated body, and the fields (and details keys) its source names, set or left empty.

    A new record is created from the body. A record whose external_id the tenant already has updates that
    resource with the fields named (one named but left empty is reset), its details merged key by key."""

    data: ResourceCreateModel
    given: frozenset[str] = frozenset()
    given_details: frozenset[str] = frozenset()


@dataclass
class UpsertOutcome:
    status: UpsertStatus
    id: int | None = None  # the resource's id; none for rejected records and created ones in a dry run
    reason: str | None = None  # 'field: message' for a rejected record


_Result = tuple[UpsertOutcome, Resource | None]  # the outcome, and the row written (None when nothing is)


def _update_changes(item: ResourceUpsert) -> dict[str, Any]:
    """The changes a record makes to the stored resource, before the update rules (rules.normalize_changes)."""
    data = item.data
    given = item.given | data.model_fields_set
    fields = data.model_dump(exclude={"kind", "details", "external_id", "language"})
    changes = {name: value for name, value in fields.items() if name in given}
    changes["language"] = data.language  # None: detected again from the text, as on create
    details = data.details.model_dump(mode="json", exclude_none=True)
    known = DETAILS_MODELS[data.kind].model_fields
    given_details = item.given_details | data.details.model_fields_set
    changes["details"] = {name: details.get(name) for name in given_details if name in known}
    return changes


def _upsert_one(
    session: Session, tenant: str, item: ResourceUpsert, existing: Resource | None, dry_run: bool
) -> _Result:
    """Create or update one record in the session (no flush); a broken rule rejects the record."""
    data = item.data
    if existing is not None and existing.kind != data.kind:
        reason = (
            f"kind: external_id {data.external_id!r} already names a {existing.kind} "
            f"(id {existing.id}) in this tenant"
        )
        return UpsertOutcome("rejected", reason=reason), None
    try:
        if existing is None:
            row = new_resource(data, tenant)
            if not dry_run:
                session.add(row)
                return UpsertOutcome("created"), row
            return UpsertOutcome("created"), None
        diff = differences(existing, normalize_changes(existing, _update_changes(item)))
    except MatcherError as exc:
        return UpsertOutcome("rejected", reason=exc.detail), None
    if not diff:
        return UpsertOutcome("unchanged", id=existing.id), None
    if dry_run:
        return UpsertOutcome("updated", id=existing.id), None
    apply_changes(existing, diff)
    session.add(existing)
    return UpsertOutcome("updated", id=existing.id), existing


def _existing(session: Session, tenant: str, batch: Sequence[ResourceUpsert]) -> dict[str, Resource]:
    external_ids = [item.data.external_id for item in batch if item.data.external_id]
    if not external_ids:
        return {}
    rows = session.exec(
        select(Resource).where(Resource.tenant_id == tenant, Resource.external_id.in_(external_ids))  # type: ignore[union-attr]
    ).all()
    return {r.external_id: r for r in rows if r.external_id is not None}


def _audit_batch(session: Session, caller: Caller, results: Sequence[_Result]) -> None:
    """One import event for a batch that wrote something: how many records it created, updated, left, rejected."""
    counts = dict.fromkeys(("created", "updated", "unchanged", "rejected"), 0)
    for outcome, _ in results:
        counts[outcome.status] += 1
    if counts["created"] or counts["updated"]:
        audit.record(session, caller, "import", record_type="resource", summary=counts)


def _end(session: Session, dry_run: bool) -> None:
    if dry_run:
        session.rollback()
    else:
        session.commit()


def _write_batch(
    session: Session, caller: Caller, batch: Sequence[ResourceUpsert], dry_run: bool
) -> list[_Result] | None:
    """The batch in one transaction, with its audit event; None when the database refuses it (rolled back)."""
    tenant = caller.tenant
    try:
        existing = _existing(session, tenant, batch)
        results = [
            _upsert_one(session, tenant, item, existing.get(item.data.external_id or ""), dry_run)
            for item in batch
        ]
        if not dry_run:
            _audit_batch(session, caller, results)
        _end(session, dry_run)
        return results
    except SQLAlchemyError:
        session.rollback()
        logger.warning("upsert batch refused by the database; retrying its %d records one by one", len(batch))
        return None
    except BaseException:
        session.rollback()
        raise


def _write_one(session: Session, tenant: str, item: ResourceUpsert, dry_run: bool) -> _Result:
    """One record in its own transaction; one the database refuses is rejected with the database's reason."""
    try:
        existing = _existing(session, tenant, [item])
        result = _upsert_one(session, tenant, item, existing.get(item.data.external_id or ""), dry_run)
        _end(session, dry_run)
        return result
    except SQLAlchemyError as exc:
        session.rollback()
        msg = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        return UpsertOutcome("rejected", reason=f"database: {msg}"), None
    except BaseException:
        session.rollback()
        raise


def upsert_resources(
    session: Session,
    *,
    caller: Caller,
    items: Sequence[ResourceUpsert],
    dry_run: bool = False,
    hub: ChangeHub | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> list[UpsertOutcome]:
    """Upsert the records by external_id into the caller's tenant (those without one are created), committing
    one transaction per batch; returns one outcome per record, in order. A dry run reports and writes nothing.

    After each batch commits, `hub.resources_changed` announces the resources it created or changed; batches
    committed before a failure stay, and are announced."""
    authorize(caller, "create", "import", owner_tenant=caller.tenant)
    if not dry_run and items:
        ensure_tenant(session, caller.tenant)
        session.commit()
    outcomes: list[UpsertOutcome] = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        results = _write_batch(session, caller, batch, dry_run)
        if results is None:
            results = [_write_one(session, caller.tenant, item, dry_run) for item in batch]
            if not dry_run:  # the records committed one by one: the batch's event follows them
                _audit_batch(session, caller, results)
                session.commit()
        written = [row for _, row in results if row is not None]
        for outcome, row in results:
            if row is not None and outcome.status == "created":
                outcome.id = row.id
        if hub is not None and written:
            hub.resources_changed(written)
        outcomes.extend(outcome for outcome, _ in results)
        if progress is not None:
            progress(len(batch))
    return outcomes
