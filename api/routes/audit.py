"""/v1/audit: a tenant's admin reads who created, changed, deleted, imported, activated or sent what."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import SessionDep, permit
from api.routes.entities import CursorQuery, LimitQuery
from matcher.domain.tables import AuditEvent, as_utc
from matcher.store import audit
from matcher.store.keys import Caller

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEventPublic(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_key_id: int | None
    actor_role: str | None
    action: str
    record_type: str
    record_id: str | None
    summary: dict[str, Any]
    request_id: str | None


class AuditEventsPublic(BaseModel):
    data: list[AuditEventPublic]
    next_cursor: str | None = None


def _public(row: AuditEvent) -> AuditEventPublic:
    return AuditEventPublic(
        id=row.id,
        at=as_utc(row.at),
        actor=row.actor,
        actor_key_id=row.actor_key_id,
        actor_role=row.actor_role,
        action=row.action,
        record_type=row.record_type,
        record_id=row.record_id,
        summary=row.summary,
        request_id=row.request_id,
    )


@router.get("", response_model=AuditEventsPublic, summary="List the tenant's audit events")
def list_audit(
    session: SessionDep,
    caller: Annotated[Caller, permit("read", "audit")],
    record_type: Annotated[str | None, Query(max_length=32)] = None,
    record_id: Annotated[str | None, Query(max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[
        datetime | None, Query(description="events at or after this time (UTC when no offset)")
    ] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> AuditEventsPublic:
    """Oldest first; events stay after the record they name is deleted. Another tenant's are never listed."""
    rows, next_cursor = audit.list_events(
        session,
        caller=caller,
        record_type=record_type,
        record_id=record_id,
        action=action,
        since=since,
        cursor=cursor,
        limit=limit,
    )
    return AuditEventsPublic(data=[_public(r) for r in rows], next_cursor=next_cursor)
