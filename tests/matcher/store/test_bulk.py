"""The store's bulk upsert on both stores: upsert by external_id per tenant, the single-record rules, one change
event per committed batch, dry runs."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter
from sqlmodel import select

from matcher.domain.schemas import ResourceCreate
from matcher.domain.tables import Resource
from matcher.errors import Forbidden, ValidationFailed
from matcher.store import records
from matcher.store.bulk import ResourceUpsert, upsert_resources
from matcher.store.events import ChangeHub
from matcher.store.keys import Caller
from tests.conftest import EventLog

pytestmark = pytest.mark.usefixtures("store")

_resource = TypeAdapter(ResourceCreate)


def _item(payloads, ext: str | None, given: tuple[str, ...] = (), **over) -> ResourceUpsert:
    """A fund record; the fields in `given` are named by the source but left empty (absent from the body)."""
    body = payloads.resource("fund", external_id=ext, **over)
    for name in given:
        body.pop(name, None)
    return ResourceUpsert(_resource.validate_python(body), given=frozenset(given))


def _hub() -> tuple[ChangeHub, EventLog]:
    hub, log = ChangeHub(), EventLog()
    hub.subscribe(log)
    return hub, log


def _stored(session, tenant: str = "tenant-a") -> dict[str | None, Resource]:
    session.expire_all()
    return {r.external_id: r for r in session.exec(select(Resource).where(Resource.tenant_id == tenant))}


def test_create_then_unchanged_then_update(session, callers, payloads):
    admin = callers["admin"]
    first = upsert_resources(session, caller=admin, items=[_item(payloads, "A"), _item(payloads, "B")])
    assert [o.status for o in first] == ["created", "created"]
    rows = _stored(session)
    assert [o.id for o in first] == [rows["A"].id, rows["B"].id]
    assert rows["A"].provider and rows["A"].language == "zh"  # provider from details, language detected

    again = upsert_resources(session, caller=admin, items=[_item(payloads, "A"), _item(payloads, "B")])
    assert [(o.status, o.id) for o in again] == [("unchanged", rows["A"].id), ("unchanged", rows["B"].id)]

    stamp = rows["A"].updated_at
    changed = upsert_resources(
        session, caller=admin, items=[_item(payloads, "A", title="Climate fund", description="clean energy")]
    )
    assert changed[0].status == "updated"
    after = _stored(session)["A"]
    assert after.title == "Climate fund" and after.language == "en"  # detected again, as on create
    assert after.details == rows["A"].details and after.updated_at != stamp


def test_a_field_named_but_left_empty_is_reset_and_one_not_named_is_kept(session, callers, payloads):
    admin = callers["admin"]
    upsert_resources(
        session, caller=admin, items=[_item(payloads, "A", region="北京", valid_until="2030-01-01")]
    )
    upsert_resources(session, caller=admin, items=[_item(payloads, "A", given=("region",))])
    row = _stored(session)["A"]
    assert row.region is None and str(row.valid_until) == "2030-01-01"


def test_records_follow_the_single_record_rules(session, callers, payloads):
    """A record breaking a rule is rejected with the very message a single create raises; the others land."""
    admin = callers["admin"]
    bad = _item(payloads, "N", title="nul\x00")
    with pytest.raises(ValidationFailed) as single:
        records.create_resource(session, caller=admin, data=bad.data)
    session.rollback()
    out = upsert_resources(session, caller=admin, items=[_item(payloads, "G"), bad])
    assert [(o.status, o.reason) for o in out] == [("created", None), ("rejected", single.value.detail)]
    assert set(_stored(session)) == {"G"}


def test_an_external_id_of_another_kind_is_rejected(session, callers, payloads):
    admin = callers["admin"]
    upsert_resources(session, caller=admin, items=[_item(payloads, "X")])
    result = ResourceUpsert(_resource.validate_python(payloads.resource("result", external_id="X")))
    (out,) = upsert_resources(session, caller=admin, items=[result])
    assert out.status == "rejected" and out.reason.startswith("kind: external_id 'X' already names a fund")


def test_external_ids_are_per_tenant(session, callers, payloads):
    upsert_resources(session, caller=callers["admin"], items=[_item(payloads, "S", title="A的")])
    (theirs,) = upsert_resources(session, caller=callers["other"], items=[_item(payloads, "S", title="B的")])
    assert theirs.status == "created"
    assert _stored(session)["S"].title == "A的" and _stored(session, "tenant-b")["S"].title == "B的"


def test_one_change_event_per_committed_batch(session, callers, payloads):
    hub, log = _hub()
    items = [_item(payloads, f"E{i}") for i in range(5)]
    out = upsert_resources(session, caller=callers["admin"], items=items, hub=hub, batch_size=2)
    ids = [o.id for o in out]
    assert log.calls == [
        ("resources_changed", ids[:2]),
        ("resources_changed", ids[2:4]),
        ("resources_changed", ids[4:]),
    ]
    log.clear()
    upsert_resources(session, caller=callers["admin"], items=items, hub=hub, batch_size=2)
    assert log.calls == []  # nothing changed, nothing announced


def test_dry_run_writes_and_announces_nothing(session, callers, payloads):
    admin = callers["admin"]
    upsert_resources(session, caller=admin, items=[_item(payloads, "D")])
    hub, log = _hub()
    out = upsert_resources(
        session,
        caller=admin,
        items=[_item(payloads, "D", title="改"), _item(payloads, "E")],
        dry_run=True,
        hub=hub,
    )
    assert [(o.status, o.id is None) for o in out] == [("updated", False), ("created", True)]
    assert set(_stored(session)) == {"D"} and _stored(session)["D"].title != "改"
    assert log.calls == []


def test_the_writer_roles_apply(session, payloads):
    with pytest.raises(Forbidden):
        upsert_resources(
            session, caller=Caller(tenant="tenant-a", role="viewer"), items=[_item(payloads, "R")]
        )
