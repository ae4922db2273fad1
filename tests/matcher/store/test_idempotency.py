"""Idempotency records on both stores: fingerprints, begin/complete/replay, purge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from matcher.domain.tables import IdempotencyRecord, utcnow
from matcher.errors import ValidationFailed
from matcher.store import idempotency
from matcher.store.idempotency import IdempotencyScope

pytestmark = pytest.mark.usefixtures("store")


def test_fingerprint_ignores_formatting_only():
    assert idempotency.fingerprint(b'{"a": 1, "b": [1, 2]}') == idempotency.fingerprint(b'{"b":[1,2],"a":1}')
    assert idempotency.fingerprint(b'{"a": 1}') != idempotency.fingerprint(b'{"a": 2}')
    assert idempotency.fingerprint(b"not json") == idempotency.fingerprint(b"not json")


def test_begin_complete_replay(engine):
    scope = IdempotencyScope(tenant="tenant-a", key="k", method="POST", path="/v1/x", body_hash="h1")
    with Session(engine) as s:
        from matcher.store.keys import ensure_tenant

        ensure_tenant(s, "tenant-a")
        s.commit()
        assert idempotency.begin(s, scope) is None
        idempotency.complete(s, scope, status_code=201, response={"id": 7})
        s.commit()
    with Session(engine) as s:
        replay = idempotency.begin(s, scope)
        assert replay is not None and (replay.status_code, replay.body) == (201, {"id": 7})
        with pytest.raises(ValidationFailed, match="different body"):
            idempotency.begin(s, IdempotencyScope(**{**scope.__dict__, "body_hash": "h2"}))
        assert idempotency.begin(s, IdempotencyScope(**{**scope.__dict__, "path": "/v1/y"})) is None
        s.rollback()
        assert idempotency.purge(s, before=utcnow() - timedelta(days=1)) == 0
        assert idempotency.purge(s, before=utcnow() + timedelta(seconds=1)) == 1
        s.commit()
        assert s.exec(select(IdempotencyRecord)).all() == []
