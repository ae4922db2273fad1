"""Tables for webhook subscriptions, their delivery log, and the standing matches already notified."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from matcher.domain.tables import utcnow


class WebhookSubscription(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=128)  # shared with the receiver to verify X-Parkmatch-Signature
    events: list[str] = Field(
        default_factory=lambda: ["match.created"], sa_column=Column(JSON, nullable=False)
    )
    description: str = ""
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class WebhookDelivery(SQLModel, table=True):
    """One event for one subscription, with every attempt in `log`."""

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="webhooksubscription.id", index=True)
    event_id: str = Field(max_length=64, index=True)
    event: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = "pending"  # pending | delivered | failed
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    log: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    delivered_at: datetime | None = None


class StandingMatch(SQLModel, table=True):
    """A need that a resource fits above the notify threshold; recorded once, so each is notified once."""

    __table_args__ = (UniqueConstraint("resource_id", "need_id"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(index=True)  # the need's tenant: who is told
    resource_id: int = Field(index=True)
    need_id: int = Field(index=True)
    enterprise_id: int | None = Field(default=None, index=True)
    score: float
    summary: str = ""
    created_at: datetime = Field(default_factory=utcnow)
