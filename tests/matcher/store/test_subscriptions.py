"""An enterprise's digest subscription in the store, without HTTP: own tenant only, values checked, `updated_at`
moved only by a real change and then announced, so the indexes' stamps follow; one-click unsubscribe by token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from matcher.digests.tokens import InvalidToken, make_unsubscribe_token
from matcher.domain.schemas import EnterpriseCreate
from matcher.domain.tables import Enterprise, Need, utcnow
from matcher.domain.taxonomy import default_taxonomy
from matcher.errors import NotFound, ValidationFailed
from matcher.indexing.demand_keys import DEMAND_ENTERPRISE, DEMAND_NEED, demand_key
from matcher.indexing.indexer import Indexer
from matcher.indexing.metas import stamp
from matcher.models.encoder import load_configured_encoder
from matcher.store import records, subscriptions
from matcher.store.events import ChangeHub
from tests.conftest import EventLog

pytestmark = pytest.mark.usefixtures("store")

SECRET = "s" * 32


@pytest.fixture
def hub() -> tuple[ChangeHub, EventLog]:
    h, log = ChangeHub(), EventLog()
    h.subscribe(log)
    return h, log


def _enterprise(session: Session, callers, payloads, **over) -> Enterprise:
    data = EnterpriseCreate.model_validate(payloads.enterprise(**over))
    row = records.create_enterprise(session, caller=callers["admin"], data=data)
    # an older stamp, so that a change made within the same clock tick still moves it
    row.updated_at = utcnow() - timedelta(hours=1)
    session.add(row)
    session.commit()
    return row


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_another_tenant_cannot_read_or_change_a_subscription(session, callers, payloads, hub, visibility):
    h, log = hub
    ent = _enterprise(session, callers, payloads, visibility=visibility)
    before = (ent.digest_frequency, ent.unsubscribed, ent.updated_at)
    other = callers["other"].tenant
    missing_id = ent.id + 1000

    def message(call) -> str:
        with pytest.raises(NotFound) as exc:
            call()
        return exc.value.detail

    # the same answer as for an id that does not exist: the enterprise's existence is not revealed
    assert message(lambda: subscriptions.get_subscription(session, tenant=other, enterprise_id=ent.id)) == (
        f"enterprise {ent.id} not found"
    )
    assert message(
        lambda: subscriptions.get_subscription(session, tenant=other, enterprise_id=missing_id)
    ) == (f"enterprise {missing_id} not found")
    assert (
        message(
            lambda: subscriptions.update_subscription(
                session, tenant=other, enterprise_id=ent.id, frequency="off", unsubscribed=True, hub=h
            )
        )
        == f"enterprise {ent.id} not found"
    )
    session.expire_all()
    stored = session.get(Enterprise, ent.id)
    assert (stored.digest_frequency, stored.unsubscribed, stored.updated_at) == before
    assert log.calls == []
    # ids no store can hold are not found either (PostgreSQL cannot even look them up)
    with pytest.raises(NotFound):
        subscriptions.get_subscription(session, tenant=ent.tenant_id, enterprise_id=2**63)


def test_update_sets_what_is_given_and_announces_the_change_after_commit(session, callers, payloads, hub):
    h, log = hub
    ent = _enterprise(session, callers, payloads, language="zh", digest_kinds=["fund"])
    before = stamp(ent)
    row = subscriptions.update_subscription(
        session,
        tenant=ent.tenant_id,
        enterprise_id=ent.id,
        frequency="biweekly",
        kinds=["result", "scenario", "result"],
        hub=h,
    )
    assert (row.digest_frequency, row.digest_kinds, row.language) == (
        "biweekly",
        ["result", "scenario"],
        "zh",
    )
    assert stamp(row) > before
    assert log.calls == [("demand_changed", [], [ent.id])]

    # empty kinds means every kind; the stored row is what was returned
    subscriptions.update_subscription(session, tenant=ent.tenant_id, enterprise_id=ent.id, kinds=[], hub=h)
    session.expire_all()
    assert session.get(Enterprise, ent.id).digest_kinds == []


def test_an_update_that_changes_nothing_keeps_the_stamp_and_says_nothing(session, callers, payloads, hub):
    h, log = hub
    ent = _enterprise(session, callers, payloads, digest_frequency="weekly", language="en")
    before = stamp(ent)
    row = subscriptions.update_subscription(
        session, tenant=ent.tenant_id, enterprise_id=ent.id, frequency="weekly", language="en", hub=h
    )
    assert stamp(row) == before
    assert log.calls == []


@pytest.mark.parametrize(
    ("field", "given"),
    [
        ("frequency", {"frequency": "daily"}),
        ("kinds", {"kinds": ["fund", "patent"]}),
        ("language", {"language": "fr"}),
    ],
)
def test_values_outside_the_choices_are_refused_by_field(session, callers, payloads, hub, field, given):
    h, log = hub
    ent = _enterprise(session, callers, payloads)
    with pytest.raises(ValidationFailed) as exc:
        subscriptions.update_subscription(session, tenant=ent.tenant_id, enterprise_id=ent.id, hub=h, **given)
    assert exc.value.errors[0]["field"] == field
    assert log.calls == []


def test_unsubscribe_by_token_once(session, callers, payloads, hub):
    h, log = hub
    ent = _enterprise(session, callers, payloads)
    token = make_unsubscribe_token(ent.id, SECRET)
    assert subscriptions.enterprise_for_token(session, token=token, secret=SECRET).id == ent.id

    row = subscriptions.unsubscribe(session, token=token, secret=SECRET, hub=h)
    assert row.unsubscribed and log.calls == [("demand_changed", [], [ent.id])]
    first = stamp(row)
    # a second click (or a mail client's retry) changes nothing
    assert subscriptions.unsubscribe(session, token=token, secret=SECRET, hub=h).unsubscribed
    assert len(log.calls) == 1 and stamp(row) == first

    with pytest.raises(InvalidToken):
        subscriptions.unsubscribe(
            session, token=make_unsubscribe_token(ent.id, "x" * 32), secret=SECRET, hub=h
        )
    records.delete_enterprise(session, caller=callers["admin"], id=ent.id)
    with pytest.raises(NotFound, match="no longer exists"):
        subscriptions.unsubscribe(session, token=token, secret=SECRET, hub=h)


def _store_stamps(session: Session) -> dict[int, float]:
    """The demand stamps the indexer's reconcile compares with, read from the store as it reads them."""
    out = {demand_key(DEMAND_NEED, n.id): stamp(n) for n in session.exec(select(Need))}
    out.update({demand_key(DEMAND_ENTERPRISE, e.id): stamp(e) for e in session.exec(select(Enterprise))})
    return out


def test_the_indexer_learns_of_every_stamp_a_subscription_change_moves(
    session, callers, payloads, engine, engine_settings
):
    ent = _enterprise(session, callers, payloads, name="量子传感科技")
    indexer = Indexer(engine_settings, engine, default_taxonomy(), load_configured_encoder(engine_settings))
    indexer.start(background_save_s=0)
    try:
        hub = ChangeHub()
        hub.subscribe(indexer)
        key = demand_key(DEMAND_ENTERPRISE, ent.id)
        assert indexer.demand.reconcile(_store_stamps(session)) == set()

        subscriptions.update_subscription(
            session, tenant=ent.tenant_id, enterprise_id=ent.id, frequency="off", language="en", hub=hub
        )
        subscriptions.unsubscribe(
            session, token=make_unsubscribe_token(ent.id, SECRET), secret=SECRET, hub=hub
        )
        session.expire_all()
        stored = session.get(Enterprise, ent.id)
        assert indexer.demand.snapshot_stamps()[key] == stamp(stored)
        assert indexer.demand_catalog.get(key).updated == stamp(stored)
        assert indexer.demand.reconcile(_store_stamps(session)) == set()

        # the check above can fail: a change the indexer is not told of leaves its stamp behind the store's
        subscriptions.update_subscription(
            session, tenant=ent.tenant_id, enterprise_id=ent.id, unsubscribed=False, hub=None
        )
        assert indexer.demand.reconcile(_store_stamps(session)) == {key}
    finally:
        indexer.close()
