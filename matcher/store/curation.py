"""An enterprise's curated resources: pins (shown first in its matches and digests), blocks (never shown to it)
and notes, kept by its own tenant's staff. The match pipeline reads them through `curated_for`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from matcher.domain.permissions import authorize
from matcher.domain.tables import Curation, Enterprise, Resource, utcnow
from matcher.domain.visibility import visible_to, writable_by
from matcher.errors import NotFound, invalid
from matcher.store import audit
from matcher.store.db import valid_id
from matcher.store.keys import Caller

STATES = ("pin", "block")
MAX_NOTE = 2000


@dataclass(frozen=True)
class Curated:
    """The resource ids pinned and blocked for one enterprise by one tenant."""

    pinned: frozenset[int] = frozenset()
    blocked: frozenset[int] = frozenset()


NOTHING = Curated()


def curated_for(db: Engine | Session, *, tenant: str, enterprise_id: int | None) -> Curated:
    """Pins and blocks the tenant keeps for the enterprise (nothing for None): what its matches apply."""
    if enterprise_id is None or not valid_id(enterprise_id):
        return NOTHING
    stmt = select(Curation.resource_id, Curation.state).where(
        Curation.tenant_id == tenant,
        Curation.enterprise_id == enterprise_id,
        col(Curation.state).is_not(None),
    )
    if isinstance(db, Session):
        rows = list(db.exec(stmt))
    else:
        with Session(db) as session:
            rows = list(session.exec(stmt))
    return Curated(
        pinned=frozenset(r for r, s in rows if s == "pin"),
        blocked=frozenset(r for r, s in rows if s == "block"),
    )


def _enterprise(session: Session, caller: Caller, enterprise_id: int, action: str) -> Enterprise:
    authorize(caller, action, "curation", owner_tenant=None)
    ent = session.get(Enterprise, enterprise_id) if valid_id(enterprise_id) else None
    if ent is None or not writable_by(ent, caller.tenant):
        raise NotFound(f"no enterprise with id {enterprise_id}")
    return ent


def list_curation(session: Session, *, caller: Caller, enterprise_id: int) -> dict[int, Curation]:
    """The enterprise's curation rows by resource id (its own tenant's staff only)."""
    _enterprise(session, caller, enterprise_id, "read")
    stmt = select(Curation).where(
        Curation.tenant_id == caller.tenant, Curation.enterprise_id == enterprise_id
    )
    return {row.resource_id: row for row in session.exec(stmt)}


def curate(
    session: Session,
    *,
    caller: Caller,
    enterprise_id: int,
    resource_id: int,
    state: str | None = None,
    set_state: bool = False,
    note: str | None = None,
    commit: bool = True,
) -> Curation:
    """Pin, block or clear (`set_state` with `state` pin / block / None) and/or set the note of one resource for
    one enterprise of the caller's tenant; audited. The resource must be one the caller can see."""
    ent = _enterprise(session, caller, enterprise_id, "update")
    resource = session.get(Resource, resource_id) if valid_id(resource_id) else None
    if resource is None or not visible_to(resource, caller.tenant):
        raise NotFound(f"no resource with id {resource_id}")
    if set_state and state is not None and state not in STATES:
        raise invalid("state", f"expected one of {', '.join(STATES)} or none", "enum")
    if note is not None:
        note = note.replace("\x00", "").strip()
        if len(note) > MAX_NOTE:
            raise invalid("note", f"at most {MAX_NOTE} characters", "string_too_long")
    row = session.exec(
        select(Curation).where(
            Curation.tenant_id == caller.tenant,
            Curation.enterprise_id == ent.id,
            Curation.resource_id == resource_id,
        )
    ).first()
    if row is None:
        row = Curation(tenant_id=caller.tenant, enterprise_id=ent.id, resource_id=resource_id)
    changed = []
    if set_state and row.state != state:
        row.state = state
        changed.append("state")
    if note is not None and note != row.note:
        row.note = note
        changed.append("note")
    if changed:
        row.updated_at = utcnow()
        row.updated_by = audit.actor_name(caller)
        session.add(row)
        session.flush()
        summary = {"fields": changed, "resource_id": resource_id, "state": row.state}
        audit.record(session, caller, "curate", record_type="enterprise", record_id=ent.id, summary=summary)
    if commit:
        session.commit()
    return row
