"""A store created before a nullable column was added gets the column at start, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlmodel import Session

from matcher.domain.schemas import EnterpriseCreate, NeedCreate
from matcher.store import records
from matcher.store.db import init_db
from matcher.store.keys import Caller

pytestmark = pytest.mark.usefixtures("store")


def test_created_by_is_added_to_an_older_store(engine, payloads):
    with engine.begin() as conn:
        for table in ("need", "resource", "enterprise"):
            conn.execute(text(f'ALTER TABLE "{table}" DROP COLUMN "created_by"'))
    assert "created_by" not in {c["name"] for c in inspect(engine).get_columns("need")}
    init_db(engine)
    init_db(engine)  # a second start changes nothing
    for table in ("need", "resource", "enterprise"):
        assert "created_by" in {c["name"] for c in inspect(engine).get_columns(table)}
    platform = Caller(tenant="tenant-a", role="platform", key_id=5)
    with Session(engine) as session:
        ent = records.create_enterprise(
            session,
            caller=Caller(tenant="tenant-a", role="admin"),
            data=EnterpriseCreate(**payloads.enterprise()),
        )
        need = records.create_need(session, caller=platform, data=NeedCreate(**payloads.need(ent.id)))
        assert need.created_by == 5
        records.delete_need(session, caller=platform, id=need.id)
