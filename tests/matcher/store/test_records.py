"""The store's single-record writes and lists on both stores, without HTTP: scoping, roles, rules, events after
commit, pages."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import TypeAdapter
from sqlmodel import Session, select

from matcher.domain.schemas import EnterpriseCreate, NeedCreate, NeedUpdate, ResourceCreate, ResourceUpdate
from matcher.domain.tables import DigestLog, Need, Resource
from matcher.errors import Conflict, Forbidden, NotFound, ValidationFailed
from matcher.store import queries, records
from matcher.store.events import ChangeHub
from matcher.store.keys import list_api_keys
from matcher.store.public import to_public_enterprise
from tests.conftest import EventLog

pytestmark = pytest.mark.usefixtures("store")

_resource = TypeAdapter(ResourceCreate)


@pytest.fixture
def hub() -> tuple[ChangeHub, EventLog]:
    h, rec = ChangeHub(), EventLog()
    h.subscribe(rec)
    return h, rec


def _res(payloads, kind="result", **over):
    return _resource.validate_python(payloads.resource(kind, **over))


def test_resource_lifecycle(session, callers, payloads, hub):
    h, rec = hub
    admin = callers["admin"]
    row = records.create_resource(
        session, caller=admin, data=_res(payloads, title="Sensor", description="for navigation"), hub=h
    )
    assert row.id and row.tenant_id == "tenant-a" and row.language == "en" and row.provider == "清华大学"
    assert rec.calls == [("resources_changed", [row.id])]
    assert records.get_resource(session, caller=callers["other"], id=row.id).id == row.id  # public

    updated = records.update_resource(
        session,
        caller=admin,
        id=row.id,
        data=ResourceUpdate(details={"trl": 9}, language=None, title="量子"),
        hub=h,
    )
    assert updated.details["trl"] == 9 and updated.details["holder"] == "清华大学"
    assert updated.language == "zh"  # null language means: detect again
    records.delete_resource(session, caller=admin, id=row.id, hub=h)
    assert rec.calls[-1] == ("resources_removed", [row.id])
    with pytest.raises(NotFound):
        records.get_resource(session, caller=admin, id=row.id)


def test_events_wait_for_commit_and_vanish_on_rollback(engine, callers, payloads, hub):
    h, rec = hub
    with Session(engine, expire_on_commit=False) as s:
        records.create_resource(s, caller=callers["admin"], data=_res(payloads), hub=h, commit=False)
        assert rec.calls == []
        s.rollback()
        assert rec.calls == []
        row = records.create_resource(s, caller=callers["admin"], data=_res(payloads), hub=h, commit=False)
        s.commit()
        assert rec.calls == [("resources_changed", [row.id])]
        s.commit()  # nothing queued twice
        assert len(rec.calls) == 1
    with Session(engine) as s:
        assert len(s.exec(select(Resource)).all()) == 1


def test_private_rows_are_not_found_by_other_tenants(session, callers, payloads):
    row = records.create_resource(session, caller=callers["admin"], data=_res(payloads, visibility="private"))
    other = callers["other"]
    with pytest.raises(NotFound):
        records.get_resource(session, caller=other, id=row.id)
    with pytest.raises(NotFound):
        records.update_resource(session, caller=other, id=row.id, data=ResourceUpdate(title="x"))
    with pytest.raises(NotFound):
        records.delete_resource(session, caller=other, id=row.id)
    assert queries.list_resources(session, caller=other) == ([], None)
    assert queries.count_resources(session, caller=other) == 0
    assert queries.count_resources(session, caller=callers["platform"]) == 1


def test_roles(session, callers, payloads):
    with pytest.raises(Forbidden):
        records.create_enterprise(
            session, caller=callers["platform"], data=EnterpriseCreate(**payloads.enterprise())
        )
    ent = records.create_enterprise(
        session, caller=callers["officer"], data=EnterpriseCreate(**payloads.enterprise())
    )
    platform = replace(callers["platform"], key_id=7)  # a platform owns what its key created
    need = records.create_need(session, caller=platform, data=NeedCreate(**payloads.need(ent.id)))
    assert need.tenant_id == "tenant-a"
    with pytest.raises(Forbidden):
        records.delete_enterprise(session, caller=callers["platform"], id=ent.id)
    with pytest.raises(Forbidden):
        list_api_keys(session, caller=callers["officer"])


def test_validation_errors_name_the_field(session, callers, payloads):
    row = records.create_resource(session, caller=callers["admin"], data=_res(payloads, "fund"))
    with pytest.raises(ValidationFailed) as err:
        records.update_resource(
            session, caller=callers["admin"], id=row.id, data=ResourceUpdate(details={"stages": ["x"]})
        )
    assert err.value.errors[0]["field"] == "details.stages.0"
    with pytest.raises(ValidationFailed) as err:
        records.update_resource(
            session, caller=callers["admin"], id=row.id, data=ResourceUpdate.model_construct(status=None)
        )
    assert err.value.errors[0]["field"] == "status"
    with pytest.raises(ValidationFailed) as err:
        records.create_resource(session, caller=callers["admin"], data=_res(payloads, region="海淀\x00园"))
    assert err.value.errors[0]["field"] == "region"
    session.rollback()
    assert records.get_resource(session, caller=callers["admin"], id=row.id).details == row.details


def test_external_id_conflicts(session, callers, payloads):
    records.create_resource(session, caller=callers["admin"], data=_res(payloads, external_id="A"))
    with pytest.raises(Conflict, match="external_id 'A'"):
        records.create_resource(session, caller=callers["officer"], data=_res(payloads, external_id="A"))
    records.create_resource(session, caller=callers["other"], data=_res(payloads, external_id="A"))
    records.create_enterprise(
        session, caller=callers["admin"], data=EnterpriseCreate(**payloads.enterprise(external_id="A"))
    )
    assert queries.count_resources(session, caller=callers["admin"]) == 2


def test_need_needs_an_own_enterprise(session, callers, payloads):
    theirs = records.create_enterprise(
        session, caller=callers["other"], data=EnterpriseCreate(**payloads.enterprise())
    )
    with pytest.raises(ValidationFailed) as err:
        records.create_need(session, caller=callers["admin"], data=NeedCreate(**payloads.need(theirs.id)))
    assert err.value.errors[0]["field"] == "enterprise_id"
    session.rollback()
    assert session.exec(select(Need)).all() == []


def test_enterprise_delete_cascades(session, callers, payloads, hub):
    h, rec = hub
    admin = callers["admin"]
    ent = records.create_enterprise(session, caller=admin, data=EnterpriseCreate(**payloads.enterprise()))
    keep = records.create_enterprise(
        session, caller=admin, data=EnterpriseCreate(**payloads.enterprise(name="B"))
    )
    needs = [
        records.create_need(session, caller=admin, data=NeedCreate(**payloads.need(e.id)))
        for e in (ent, ent, keep)
    ]
    session.add(DigestLog(enterprise_id=ent.id, period="2026-W01"))
    session.commit()
    removed = records.delete_enterprise(session, caller=admin, id=ent.id, hub=h)
    assert removed == [needs[0].id, needs[1].id]
    assert rec.calls == [("demand_removed", removed, [ent.id])]
    assert [n.id for n in session.exec(select(Need)).all()] == [needs[2].id]
    assert session.exec(select(DigestLog)).all() == []


def test_public_enterprise_hides_private_fields(session, callers, payloads):
    ent = records.create_enterprise(
        session, caller=callers["admin"], data=EnterpriseCreate(**payloads.enterprise())
    )
    mine = to_public_enterprise(ent, callers["platform"])
    theirs = to_public_enterprise(ent, callers["other"])
    assert (
        mine.email == "contact@example.com"
        and mine.tenant == "tenant-a"
        and mine.digest_kinds == ["fund", "result"]
    )
    assert (
        theirs.email is None
        and theirs.tenant is None
        and theirs.digest_kinds is None
        and theirs.language is None
    )
    assert theirs.name == mine.name and theirs.created_at.tzinfo is not None


def test_pages_and_counts(session, callers, payloads):
    admin = callers["admin"]
    ids = [
        records.create_resource(session, caller=admin, data=_res(payloads, "fund" if i % 2 else "result")).id
        for i in range(5)
    ]
    rows, cursor = queries.list_resources(session, caller=admin, limit=2)
    walked = [r.id for r in rows]
    while cursor:
        rows, cursor = queries.list_resources(session, caller=admin, limit=2, cursor=cursor)
        walked += [r.id for r in rows]
    assert walked == ids
    funds, nxt = queries.list_resources(session, caller=admin, kind="fund", limit=200)
    assert [r.id for r in funds] == ids[1::2] and nxt is None
    assert queries.count_resources(session, caller=admin, kind="fund") == 2
    with pytest.raises(ValidationFailed):
        queries.list_resources(session, caller=admin, limit=201)
    with pytest.raises(ValidationFailed):
        queries.list_resources(session, caller=admin, cursor=queries.encode_cursor(1)[:-2] + "!!")
    assert queries.decode_cursor(queries.encode_cursor(12345)) == 12345


def test_need_update_and_kind_filter(session, callers, payloads):
    admin = callers["admin"]
    ent = records.create_enterprise(session, caller=admin, data=EnterpriseCreate(**payloads.enterprise()))
    need = records.create_need(
        session, caller=admin, data=NeedCreate(**payloads.need(ent.id, kinds=["fund"]))
    )
    assert [n.id for n in queries.list_needs(session, caller=admin, kind="result")[0]] == []
    records.update_need(session, caller=admin, id=need.id, data=NeedUpdate(kinds=None))
    assert [n.id for n in queries.list_needs(session, caller=admin, kind="result")[0]] == [need.id]
