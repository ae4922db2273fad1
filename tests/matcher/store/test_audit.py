"""The audit trail in the store on both stores: one import event per committed batch with its counts (also when a
refused batch is written record by record), none for dry runs or rolled-back writes, reading scoped to the tenant."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter
from sqlmodel import select

from matcher.domain.schemas import ResourceCreate
from matcher.domain.tables import AuditEvent
from matcher.errors import Forbidden
from matcher.store import audit
from matcher.store.bulk import ResourceUpsert, upsert_resources
from matcher.store.keys import Caller, create_key, revoke_key

pytestmark = pytest.mark.usefixtures("store")

_resource = TypeAdapter(ResourceCreate)


def _item(payloads, ext: str, **over) -> ResourceUpsert:
    return ResourceUpsert(_resource.validate_python(payloads.resource("fund", external_id=ext, **over)))


def _imports(session) -> list[AuditEvent]:
    session.expire_all()
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == "import").order_by(AuditEvent.id)))


def test_one_import_event_per_committed_batch_with_counts(session, payloads):
    caller = Caller(tenant="tenant-a", role="officer", key_id=7)
    items = [_item(payloads, f"F{i}") for i in range(5)]
    upsert_resources(session, caller=caller, items=items, batch_size=2)
    events = _imports(session)
    assert [e.summary["created"] for e in events] == [2, 2, 1]
    assert all(e.summary["updated"] == e.summary["unchanged"] == e.summary["rejected"] == 0 for e in events)
    assert {(e.tenant_id, e.actor, e.actor_key_id, e.actor_role) for e in events} == {
        ("tenant-a", "key:7", 7, "officer")
    }

    changed = [
        _item(payloads, "F0", title="新的标题"),
        _item(payloads, "F1"),
        ResourceUpsert(
            _resource.validate_python(payloads.resource("result", external_id="F2"))
        ),  # kind clash
    ]
    upsert_resources(session, caller=caller, items=changed, batch_size=10)
    assert _imports(session)[-1].summary == {"created": 0, "updated": 1, "unchanged": 1, "rejected": 1}
    upsert_resources(
        session, caller=caller, items=changed, batch_size=10
    )  # nothing changes: nothing to audit
    upsert_resources(session, caller=caller, items=[_item(payloads, "N1")], dry_run=True)
    assert len(_imports(session)) == 4


def test_a_batch_written_record_by_record_leaves_one_event(session, payloads):
    caller = Caller(tenant="tenant-a", role="admin", key_id=3)
    # two new rows with one external_id: the database refuses the batch, then takes them one by one
    items = [_item(payloads, "D"), _item(payloads, "D", title="第二行"), _item(payloads, "E")]
    outcomes = upsert_resources(session, caller=caller, items=items)
    assert [o.status for o in outcomes] == ["created", "updated", "created"]
    (event,) = _imports(session)
    assert event.summary == {"created": 2, "updated": 1, "unchanged": 0, "rejected": 0}


def test_key_commands_are_audited_as_the_operator(session):
    row, plaintext = create_key(session, tenant="tenant-a", role="platform")
    assert revoke_key(session, row.id)
    session.commit()
    events = list(session.exec(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(e.action, e.actor, e.actor_key_id, e.record_id) for e in events] == [
        ("key.create", "operator", None, str(row.id)),
        ("key.revoke", "operator", None, str(row.id)),
    ]
    assert all(plaintext not in str(e.summary) and row.key_hash not in str(e.summary) for e in events)


def test_an_event_rolls_back_with_its_change(session):
    audit.record(session, audit.Actor(tenant="tenant-a", name="test"), "update", record_type="resource")
    session.rollback()
    assert session.exec(select(AuditEvent)).all() == []


def test_reading_is_for_the_tenants_admin_only(session):
    audit.record(session, Caller(tenant="tenant-a", role="admin"), "create", record_type="need", record_id=1)
    audit.record(session, Caller(tenant="tenant-b", role="admin"), "create", record_type="need", record_id=2)
    session.commit()
    rows, cursor = audit.list_events(session, caller=Caller(tenant="tenant-b", role="admin"))
    assert [(r.tenant_id, r.record_id) for r in rows] == [("tenant-b", "2")] and cursor is None
    for role in ("officer", "platform"):
        with pytest.raises(Forbidden):
            audit.list_events(session, caller=Caller(tenant="tenant-a", role=role))
