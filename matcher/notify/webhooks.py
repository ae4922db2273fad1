"""A tenant's webhook subscriptions and their delivery log: create, list, delete, read the deliveries.

A webhook belongs to one tenant and is never shared: another tenant's webhook reads as not found, so that its
existence is never revealed."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, delete, select

from matcher.errors import NotFound, invalid
from matcher.notify.delivery import EVENTS, new_secret
from matcher.notify.tables import WebhookDelivery, WebhookSubscription
from matcher.notify.urls import validate_webhook_url
from matcher.store.db import valid_id


def create_webhook(
    session: Session,
    *,
    tenant: str,
    url: str,
    events: Sequence[str] = EVENTS,
    description: str = "",
    allow_private: bool = False,
) -> WebhookSubscription:
    """Subscribe `url` to `events` with a new signing secret; the URL is checked first (see urls.py). Committed."""
    url = validate_webhook_url(url, allow_private=allow_private)
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise invalid("events", f"{unknown[0]!r} is not one of: {', '.join(EVENTS)}")
    row = WebhookSubscription(
        tenant_id=tenant,
        url=url,
        secret=new_secret(),
        events=list(dict.fromkeys(events)),
        description=description,
    )
    session.add(row)
    session.commit()
    return row


def list_webhooks(session: Session, *, tenant: str) -> list[WebhookSubscription]:
    """The tenant's webhooks, oldest first."""
    return list(
        session.exec(
            select(WebhookSubscription)
            .where(WebhookSubscription.tenant_id == tenant)
            .order_by(col(WebhookSubscription.id))
        )
    )


def get_webhook(session: Session, *, tenant: str, webhook_id: int) -> WebhookSubscription:
    """The tenant's webhook; NotFound when it is missing or another tenant's."""
    row = session.get(WebhookSubscription, webhook_id) if valid_id(webhook_id) else None
    if row is None or row.tenant_id != tenant:
        raise NotFound(f"webhook {webhook_id} not found")
    return row


def delete_webhook(session: Session, *, tenant: str, webhook_id: int) -> None:
    """Delete the tenant's webhook with its delivery log, in one transaction."""
    row = get_webhook(session, tenant=tenant, webhook_id=webhook_id)
    session.exec(delete(WebhookDelivery).where(col(WebhookDelivery.subscription_id) == row.id))
    session.delete(row)
    session.commit()


def list_deliveries(
    session: Session, *, tenant: str, webhook_id: int, limit: int = 50
) -> list[WebhookDelivery]:
    """The newest `limit` deliveries of the tenant's webhook, newest first."""
    row = get_webhook(session, tenant=tenant, webhook_id=webhook_id)
    return list(
        session.exec(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == row.id)
            .order_by(col(WebhookDelivery.id).desc())
            .limit(limit)
        )
    )
