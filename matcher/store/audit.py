"""The audit trail: who created, changed, deleted, imported, activated or sent what in a tenant, and reading it back.

Events are written by `record` into the session of the change they describe, so they commit or roll back with it;
they name the actor by API key id and role (never the key), and keep only field names, counts and ids, never
secrets or full texts. They hold no foreign key to the record, so they stay when the record is deleted."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from matcher.domain.permissions import authorize
from matcher.domain.tables import AuditEvent
from matcher.errors import invalid

if TYPE_CHECKING:
    from matcher.store.keys import Caller

# a Caller without a key id is trusted code in the process (the command line, the demo loader)
OPERATOR = "operator"

# the id of the request being served, set by the HTTP layer for the request's duration; events carry it
_REQUEST_ID: ContextVar[str | None] = ContextVar("audit_request_id", default=None)


@contextmanager
def request_scope(request_id: str) -> Iterator[None]:
    """Events recorded inside carry `request_id` (the API's X-Request-ID), so an event leads to its request."""
    token = _REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        _REQUEST_ID.reset(token)


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any (log lines carry it too)."""
    return _REQUEST_ID.get()


@dataclass(frozen=True)
class Actor:
    """Who acted in a tenant without an API key: the digest runner, an unsubscribe link ..."""

    tenant: str
    name: str


def actor_name(actor: Caller | Actor) -> str:
    """How the trail names who acted: key:12, user:3 (a person in the workbench), operator, or the Actor's name."""
    if isinstance(actor, Actor):
        return actor.name
    if actor.key_id is not None:
        return f"key:{actor.key_id}"
    user_id = getattr(actor, "user_id", None)
    return f"user:{user_id}" if user_id else OPERATOR


def record(
    session: Session,
    actor: Caller | Actor,
    action: str,
    *,
    record_type: str,
    record_id: int | str | None = None,
    summary: Mapping[str, Any] | None = None,
    request_id: str | None = None,
    commit: bool = False,
) -> AuditEvent:
    """Add one event to the session (committed with the change it describes, or now when `commit`)."""
    name = actor_name(actor)
    key_id, role = (None, None) if isinstance(actor, Actor) else (actor.key_id, actor.role)
    event = AuditEvent(
        tenant_id=actor.tenant,
        actor=name,
        actor_key_id=key_id,
        actor_role=role,
        action=action,
        record_type=record_type,
        record_id=None if record_id is None else str(record_id),
        summary=dict(summary or {}),
        request_id=request_id or _REQUEST_ID.get(),
    )
    session.add(event)
    if commit:
        session.commit()
    return event


def list_events(
    session: Session,
    *,
    caller: Caller,
    record_type: str | None = None,
    record_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[AuditEvent], str | None]:
    """One page of the caller's tenant's events, oldest first (admins only); (events, next_cursor or None)."""
    # queries imports keys, which records through this module: imported here to keep the import order acyclic
    from matcher.store.queries import MAX_LIMIT, decode_cursor, encode_cursor

    authorize(caller, "read", "audit", owner_tenant=caller.tenant)
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    stmt = select(AuditEvent).where(AuditEvent.tenant_id == caller.tenant)
    for column, value in (
        (AuditEvent.record_type, record_type),
        (AuditEvent.record_id, record_id),
        (AuditEvent.action, action),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if since is not None:
        # stored times are UTC (SQLite keeps them without an offset): compare in UTC
        since = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
        stmt = stmt.where(AuditEvent.at >= since)
    if cursor:
        stmt = stmt.where(AuditEvent.id > decode_cursor(cursor))
    rows = list(session.exec(stmt.order_by(AuditEvent.id).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor
