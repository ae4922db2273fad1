"""SQLModel tables: the store is the source of truth for every index and model built from it.

API request/response schemas live in matcher/domain/schemas.py; these classes are persistence only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _json(default: Any = list) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


class Tenant(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = ""
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    role: str  # admin | officer | platform
    prefix: str = Field(index=True, unique=True, max_length=32)
    key_hash: str = Field(max_length=128)  # sha256 of the whole key; the key itself is never stored
    name: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class Enterprise(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant_id", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    external_id: str | None = Field(default=None, max_length=200)
    name: str = Field(max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    industries: list[str] = _json()
    region: str | None = None
    stage: str | None = None  # seed | startup | growth | mature
    tier: str | None = None  # prospect | incubating | key_account
    size: str | None = None  # micro | small | medium | large
    email: str | None = None
    digest_frequency: str = "weekly"  # weekly | biweekly | off
    digest_kinds: list[str] = _json()
    language: str = "zh"
    unsubscribed: bool = False
    visibility: str = "public"  # the public profile; contact and preferences are never shown to other tenants
    # the API key that created the row (none for rows written by the command line or before keys were recorded):
    # a platform key may change only the rows it created (domain/permissions.py)
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class Need(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    title: str = Field(max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    kinds: list[str] = _json()
    industries: list[str] = _json()
    amount: float | None = None  # CNY sought or budgeted
    region: str | None = None
    deadline: date | None = None
    trl_min: int | None = None  # how mature a result must be (the need's horizon)
    status: str = Field(default="open", index=True)  # open | matched | closed
    visibility: str = "public"
    # the API key that created the row (none for rows written by the command line or before keys were recorded):
    # a platform key may change only the rows it created (domain/permissions.py)
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class Resource(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_resource_kind_status", "kind", "status"),
    )
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    kind: str = Field(max_length=16)  # result | scenario | fund | incubator
    external_id: str | None = Field(default=None, max_length=200)
    title: str = Field(max_length=300)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    industries: list[str] = _json()
    region: str | None = None
    language: str = "zh"
    valid_until: date | None = None
    status: str = "active"  # active | paused | closed
    visibility: str = "public"
    provider: str | None = Field(default=None, max_length=300)  # holder/owner/manager/operator, for diversity
    details: dict[str, Any] = _json(dict)
    # the API key that created the row (none for rows written by the command line or before keys were recorded):
    # a platform key may change only the rows it created (domain/permissions.py)
    created_by: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class Impression(SQLModel, table=True):
    """One served match: what was shown to whom, at which rank, under which request."""

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(index=True, max_length=64)
    tenant_id: str = Field(index=True)
    need_id: int | None = Field(default=None, index=True)
    enterprise_id: int | None = Field(default=None, index=True)
    resource_id: int = Field(index=True)
    position: int
    score: float
    features: dict[str, Any] = _json(dict)
    model_version: str | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Feedback(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant_id", "idempotency_key"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(index=True)
    request_id: str | None = Field(default=None, index=True)
    need_id: int | None = Field(default=None, index=True)
    enterprise_id: int | None = Field(default=None, index=True)
    resource_id: int = Field(index=True)
    action: str  # clicked | contacted | accepted | rejected | deal
    reason: str | None = None
    amount: float | None = None
    position: int | None = None
    idempotency_key: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Curation(SQLModel, table=True):
    """What the park's staff decided about one resource for one enterprise: pinned (shown first in its matches
    and digests), blocked (never shown to it), and a note. No foreign keys: a row outlives nothing it names, and
    the store deletes an enterprise's rows with it."""

    __table_args__ = (UniqueConstraint("tenant_id", "enterprise_id", "resource_id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(index=True, max_length=64)
    enterprise_id: int = Field(index=True)
    resource_id: int = Field(index=True)
    state: str | None = Field(default=None, max_length=8)  # pin | block | None (a note alone)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    updated_by: str = Field(default="", max_length=64)  # the audit trail's actor name
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class DigestLog(SQLModel, table=True):
    """One row per enterprise per period: what makes a re-run send nothing twice."""

    __table_args__ = (UniqueConstraint("enterprise_id", "period"),)
    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int = Field(foreign_key="enterprise.id", index=True)
    period: str = Field(max_length=16)  # ISO week, e.g. 2026-W48
    # pending | sending | sent | failed | skipped | unconfirmed (a send whose worker died: never re-sent blindly)
    status: str = "pending"
    items: list[Any] = _json()
    message_id: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    # when a run claimed the row for sending ('sending'); the claim holds for MATCHER_DIGEST_LEASE_S
    claimed_at: datetime | None = None
    # when the message's body was with the SMTP server, just before its end: from then on the outcome is unknown
    handed_at: datetime | None = None


class IdempotencyRecord(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("tenant_id", "key", "method", "path"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str
    key: str = Field(max_length=200)
    method: str = Field(max_length=8)
    path: str = Field(max_length=300)
    body_hash: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] = _json(dict)
    created_at: datetime = Field(default_factory=utcnow)


class AuditEvent(SQLModel, table=True):
    """Who did what to which record of a tenant. No foreign key to the record: the event outlives it."""

    __table_args__ = (Index("ix_auditevent_tenant_record", "tenant_id", "record_type", "record_id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(index=True, max_length=64)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64)  # "key:12", or who acted without a key: "operator", "digest-runner" ...
    actor_key_id: int | None = None  # the API key's id, never the key
    actor_role: str | None = Field(default=None, max_length=16)
    action: str = Field(max_length=32, index=True)  # create | update | delete | import | model.activate ...
    record_type: str = Field(max_length=32)  # resource | enterprise | need | api_key | model
    record_id: str | None = Field(default=None, max_length=200)  # model ids are strings, row ids are not
    summary: dict[str, Any] = _json(dict)  # field names, counts, ids: never secrets or full texts
    request_id: str | None = Field(default=None, max_length=64)


def as_utc(value: datetime | None) -> datetime | None:
    """Datetimes read back from SQLite are naive; every stored datetime is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
