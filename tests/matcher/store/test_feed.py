"""The change feed on both stores: every committed write of an indexed record appends one entry in its own
transaction, numbered in commit order without gaps; a rolled-back write appends nothing; every write path
(records, bulk import, Core DML through a session) is logged."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import TypeAdapter
from sqlalchemy import insert
from sqlmodel import Session, select

from matcher.domain.schemas import EnterpriseCreate, NeedCreate, ResourceCreate, ResourceUpdate
from matcher.domain.tables import Resource
from matcher.store import feed, records
from matcher.store.bulk import ResourceUpsert, upsert_resources

pytestmark = pytest.mark.usefixtures("store")

_resource = TypeAdapter(ResourceCreate)


def _log(engine) -> list[tuple[int, str, int, str, str | None]]:
    with Session(engine) as s:
        rows = s.exec(select(feed.ChangeEntry).order_by(feed.ChangeEntry.seq)).all()
        return [(e.seq, e.record_type, e.record_id, e.op, e.tenant_id) for e in rows]


def test_create_update_delete_append_in_order(engine, session, callers, payloads):
    admin = callers["admin"]
    row = records.create_resource(session, caller=admin, data=_resource.validate_python(payloads.resource()))
    assert session.info[feed.LAST_SEQ] == 1
    records.update_resource(session, caller=admin, id=row.id, data=ResourceUpdate(title="新的标题"))
    records.update_resource(session, caller=admin, id=row.id, data=ResourceUpdate(title="新的标题"))  # no-op
    records.delete_resource(session, caller=admin, id=row.id)
    assert _log(engine) == [
        (1, "resource", row.id, "upsert", "tenant-a"),
        (2, "resource", row.id, "upsert", "tenant-a"),
        (3, "resource", row.id, "delete", "tenant-a"),
    ]
    assert feed.written_seq(session) == 3 and feed.head(engine) == 3


def test_a_rolled_back_write_appends_nothing_and_leaves_no_hole(engine, session, callers, payloads):
    admin = callers["admin"]
    records.create_resource(
        session, caller=admin, data=_resource.validate_python(payloads.resource()), commit=False
    )
    session.rollback()
    assert _log(engine) == []
    records.create_resource(session, caller=admin, data=_resource.validate_python(payloads.resource()))
    assert [seq for seq, *_ in _log(engine)] == [1]


def test_enterprise_delete_logs_its_needs(engine, session, callers, payloads):
    admin = callers["admin"]
    ent = records.create_enterprise(session, caller=admin, data=EnterpriseCreate(**payloads.enterprise()))
    need = records.create_need(session, caller=admin, data=NeedCreate(**payloads.need(ent.id)))
    records.delete_enterprise(session, caller=admin, id=ent.id)
    log = _log(engine)
    assert log[:2] == [
        (1, "enterprise", ent.id, "upsert", "tenant-a"),
        (2, "need", need.id, "upsert", "tenant-a"),
    ]
    # the needs go by a Core DELETE: logged with the enterprise, in the same transaction
    assert {(t, i, op) for _, t, i, op, _ in log[2:]} == {
        ("need", need.id, "delete"),
        ("enterprise", ent.id, "delete"),
    }


def test_bulk_import_and_core_inserts_are_logged(engine, session, callers, payloads):
    items = [
        ResourceUpsert(_resource.validate_python(payloads.resource("fund", external_id=f"F{i}")))
        for i in range(3)
    ]
    outcomes = upsert_resources(session, caller=callers["admin"], items=items, batch_size=2)
    assert [(t, i) for _, t, i, _, _ in _log(engine)] == [("resource", o.id) for o in outcomes]
    # a Core bulk insert through a session (what a bench or a script may do) is logged as well
    template = session.get(Resource, outcomes[0].id).model_dump(exclude={"id", "external_id"})
    session.execute(insert(Resource), [{**template, "title": f"bulk {n}"} for n in range(4)])
    session.commit()
    new = session.exec(select(Resource.id).where(Resource.title.startswith("bulk"))).all()  # type: ignore[union-attr]
    log = _log(engine)
    assert [seq for seq, *_ in log] == list(range(1, 8))
    assert sorted(i for _, _, i, _, _ in log[3:]) == sorted(new)


def test_a_dry_run_appends_nothing(engine, session, callers, payloads):
    items = [ResourceUpsert(_resource.validate_python(payloads.resource("fund", external_id="F")))]
    upsert_resources(session, caller=callers["admin"], items=items, dry_run=True)
    assert _log(engine) == []


@pytest.mark.slow
def test_concurrent_writers_never_show_a_hole(engine, callers, payloads):
    """Writers commit concurrently; a reader checking all along sees seqs 1..max with nothing missing, and at
    the end every write has exactly one entry."""
    admin = callers["admin"]
    writers, per_writer = 6, 8
    stop = threading.Event()
    holes: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(per_writer):
                with Session(engine, expire_on_commit=False) as s:
                    records.create_resource(
                        s, caller=admin, data=_resource.validate_python(payloads.resource()), commit=False
                    )
                    time.sleep(0.002)  # keep the transaction open a moment, to interleave with the others
                    s.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def read() -> None:
        while not stop.is_set():
            with Session(engine) as s:
                seqs = list(s.exec(select(feed.ChangeEntry.seq)))
            if seqs and len(seqs) != max(seqs):
                holes.append((len(seqs), max(seqs)))

    with Session(engine) as s:  # the tenant exists before the writers race
        records.create_resource(s, caller=admin, data=_resource.validate_python(payloads.resource()))
    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    reader.join()
    assert not errors, errors
    assert holes == []
    log = _log(engine)
    assert [seq for seq, *_ in log] == list(range(1, writers * per_writer + 2))
    with Session(engine) as s:
        assert sorted(i for _, _, i, _, _ in log) == sorted(s.exec(select(Resource.id)))
