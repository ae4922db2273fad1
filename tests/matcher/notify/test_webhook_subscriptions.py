"""A tenant's webhook subscriptions in the core, without HTTP: created with a secret, listed and deleted by their
own tenant only (another tenant's reads as not found), deleted with their delivery log."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from matcher.errors import NotFound, ValidationFailed
from matcher.notify import webhooks
from matcher.notify.tables import WebhookDelivery, WebhookSubscription
from matcher.store.keys import ensure_tenant
from tests.conftest import OTHER_TENANT, TENANT

pytestmark = pytest.mark.usefixtures("store")

URL = "https://hooks.example.com/parkmatch"


@pytest.fixture
def tenants(session: Session) -> None:
    ensure_tenant(session, TENANT)
    ensure_tenant(session, OTHER_TENANT)
    session.commit()


def _deliveries(session: Session, subscription_id: int, n: int) -> list[int]:
    rows = [
        WebhookDelivery(
            subscription_id=subscription_id, event_id=f"ev-{subscription_id}-{i}", event="match.created"
        )
        for i in range(n)
    ]
    session.add_all(rows)
    session.commit()
    return [r.id for r in rows]


@pytest.mark.usefixtures("tenants")
def test_create_list_and_read_deliveries(session):
    a = webhooks.create_webhook(
        session,
        tenant=TENANT,
        url=URL,
        events=["match.created", "match.created"],
        description="CRM",
        allow_private=True,
    )
    b = webhooks.create_webhook(session, tenant=TENANT, url=URL + "/2", allow_private=True)
    webhooks.create_webhook(session, tenant=OTHER_TENANT, url=URL, allow_private=True)
    assert a.id and a.tenant_id == TENANT and a.events == ["match.created"] and a.description == "CRM"
    assert len(a.secret) >= 32 and a.secret != b.secret
    assert [w.id for w in webhooks.list_webhooks(session, tenant=TENANT)] == [a.id, b.id]

    ids = _deliveries(session, a.id, 4)
    newest = webhooks.list_deliveries(session, tenant=TENANT, webhook_id=a.id, limit=3)
    assert [d.id for d in newest] == ids[::-1][:3]
    assert webhooks.list_deliveries(session, tenant=TENANT, webhook_id=b.id) == []


@pytest.mark.usefixtures("tenants")
def test_urls_and_events_are_checked_before_anything_is_stored(session):
    with pytest.raises(ValidationFailed) as exc:
        webhooks.create_webhook(session, tenant=TENANT, url="ftp://hooks.example.com/x", allow_private=True)
    assert exc.value.errors[0]["field"] == "url"
    with pytest.raises(ValidationFailed) as exc:
        webhooks.create_webhook(session, tenant=TENANT, url=URL, events=["match.deleted"], allow_private=True)
    assert exc.value.errors[0]["field"] == "events"
    assert session.exec(select(WebhookSubscription)).all() == []


@pytest.mark.usefixtures("tenants")
def test_another_tenant_cannot_see_delete_or_read_the_deliveries_of_a_webhook(session):
    sub = webhooks.create_webhook(session, tenant=TENANT, url=URL, allow_private=True)
    _deliveries(session, sub.id, 2)
    missing = sub.id + 1000

    def message(call) -> str:
        with pytest.raises(NotFound) as exc:
            call()
        return exc.value.detail

    # the same answer as for an id that does not exist: the webhook's existence is not revealed
    assert message(lambda: webhooks.get_webhook(session, tenant=OTHER_TENANT, webhook_id=sub.id)) == (
        f"webhook {sub.id} not found"
    )
    assert message(lambda: webhooks.get_webhook(session, tenant=OTHER_TENANT, webhook_id=missing)) == (
        f"webhook {missing} not found"
    )
    assert message(lambda: webhooks.delete_webhook(session, tenant=OTHER_TENANT, webhook_id=sub.id)) == (
        f"webhook {sub.id} not found"
    )
    assert message(lambda: webhooks.list_deliveries(session, tenant=OTHER_TENANT, webhook_id=sub.id)) == (
        f"webhook {sub.id} not found"
    )
    assert webhooks.list_webhooks(session, tenant=OTHER_TENANT) == []
    with pytest.raises(NotFound):
        webhooks.get_webhook(session, tenant=TENANT, webhook_id=2**63)
    session.expire_all()
    assert session.get(WebhookSubscription, sub.id) is not None
    assert len(webhooks.list_deliveries(session, tenant=TENANT, webhook_id=sub.id)) == 2


@pytest.mark.usefixtures("tenants")
def test_delete_removes_the_webhook_with_its_deliveries_only(session):
    gone = webhooks.create_webhook(session, tenant=TENANT, url=URL, allow_private=True)
    kept = webhooks.create_webhook(session, tenant=TENANT, url=URL + "/kept", allow_private=True)
    _deliveries(session, gone.id, 3)
    kept_deliveries = _deliveries(session, kept.id, 2)

    webhooks.delete_webhook(session, tenant=TENANT, webhook_id=gone.id)
    session.expire_all()
    assert session.get(WebhookSubscription, gone.id) is None
    remaining = session.exec(select(WebhookDelivery.id, WebhookDelivery.subscription_id)).all()
    assert sorted(remaining) == [(i, kept.id) for i in kept_deliveries]
    with pytest.raises(NotFound):
        webhooks.delete_webhook(session, tenant=TENANT, webhook_id=gone.id)
