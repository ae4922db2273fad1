"""API keys: hashing, verification and revocation in the core; /v1/keys for admins of their own tenant."""

from __future__ import annotations

import pytest
from sqlmodel import select

from matcher.domain.tables import ApiKey, Tenant
from matcher.errors import NotFound
from matcher.store.db import session_scope
from matcher.store.keys import (
    create_api_key,
    create_key,
    list_api_keys,
    revoke_api_key,
    revoke_key,
    verify_key,
)

# ---------------------------------------------------------------- the core


def test_key_is_stored_hashed_and_verifies(engine):
    with session_scope(engine) as s:
        row, plaintext = create_key(s, tenant="park-1", role="officer", name="ops")
    with session_scope(engine) as s:
        stored = s.exec(select(ApiKey)).one()
        assert plaintext not in (stored.key_hash, stored.prefix, stored.name)
        assert s.get(Tenant, "park-1") is not None
        caller = verify_key(s, plaintext)
    assert caller is not None
    assert (caller.tenant, caller.role, caller.key_id) == ("park-1", "officer", row.id)


@pytest.mark.parametrize(
    "mangle", [lambda k: k + "x", lambda k: k[:-1], lambda k: "xx" + k[2:], lambda k: "", lambda k: "pm__"]
)
def test_wrong_keys_do_not_verify(engine, mangle):
    with session_scope(engine) as s:
        _, plaintext = create_key(s, tenant="park-1", role="admin")
    with session_scope(engine) as s:
        assert verify_key(s, mangle(plaintext)) is None


def test_revoked_key_does_not_verify(engine):
    with session_scope(engine) as s:
        row, plaintext = create_key(s, tenant="park-1", role="admin")
    with session_scope(engine) as s:
        assert not revoke_key(s, row.id, tenant="park-2")
        assert verify_key(s, plaintext) is not None
        assert revoke_key(s, row.id, tenant="park-1")
    with session_scope(engine) as s:
        assert verify_key(s, plaintext) is None


def test_unknown_role_is_refused(engine):
    with session_scope(engine) as s, pytest.raises(ValueError, match="unknown role"):
        create_key(s, tenant="park-1", role="root")


@pytest.mark.usefixtures("store")
def test_api_keys_stay_in_their_tenant(session, callers):
    row, plaintext = create_api_key(session, caller=callers["admin"], role="officer", name="n")
    assert row.tenant_id == "tenant-a" and plaintext.startswith("pm_")
    with pytest.raises(NotFound):
        revoke_api_key(session, caller=callers["other"], id=row.id)
    assert list_api_keys(session, caller=callers["other"]) == []
    assert revoke_api_key(session, caller=callers["admin"], id=row.id).revoked_at is not None


# ---------------------------------------------------------------- /v1/keys


def test_admin_creates_a_working_key_in_its_own_tenant(client, headers):
    r = client.post("/v1/keys", json={"role": "platform", "name": "crm sync"}, headers=headers["admin"])
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["tenant"] == "tenant-a" and created["role"] == "platform"
    new = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/v1/resources", headers=new).status_code == 200
    assert (
        client.post("/v1/enterprises", json={"name": "x"}, headers=new).status_code == 403
    )  # a platform key

    listed = client.get("/v1/keys", headers=headers["admin"]).json()
    assert listed["count"] == 4  # admin, officer, platform from the fixture, and this one
    assert {k["tenant"] for k in listed["data"]} == {"tenant-a"}
    assert created["key"] not in client.get("/v1/keys", headers=headers["admin"]).text
    mine = next(k for k in listed["data"] if k["id"] == created["id"])
    assert (
        mine["name"] == "crm sync"
        and mine["revoked_at"] is None
        and created["key"].split("_")[1] == mine["prefix"]
    )


@pytest.mark.parametrize("body", [{"role": "root"}, {"role": "admin", "tenant": "tenant-b"}, {}])
def test_bad_key_requests(client, headers, body):
    r = client.post("/v1/keys", json=body, headers=headers["admin"])
    assert r.status_code == 422
    assert client.get("/v1/keys", headers=headers["admin"]).json()["count"] == 3


def test_revoke(client, headers):
    created = client.post("/v1/keys", json={"role": "officer"}, headers=headers["admin"]).json()
    new = {"Authorization": f"Bearer {created['key']}"}
    assert client.get("/v1/needs", headers=new).status_code == 200
    assert client.delete(f"/v1/keys/{created['id']}", headers=headers["admin"]).status_code == 204
    r = client.get("/v1/needs", headers=new)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    assert (
        client.delete(f"/v1/keys/{created['id']}", headers=headers["admin"]).status_code == 204
    )  # idempotent
    listed = {k["id"]: k for k in client.get("/v1/keys", headers=headers["admin"]).json()["data"]}
    assert listed[created["id"]]["revoked_at"] is not None


def test_admin_cannot_touch_another_tenants_keys(client, headers):
    theirs = client.post("/v1/keys", json={"role": "officer"}, headers=headers["other"]).json()
    assert client.delete(f"/v1/keys/{theirs['id']}", headers=headers["admin"]).status_code == 404
    assert client.delete("/v1/keys/99999999999", headers=headers["admin"]).status_code == 404
    assert client.get("/v1/needs", headers={"Authorization": f"Bearer {theirs['key']}"}).status_code == 200
    assert theirs["id"] not in [
        k["id"] for k in client.get("/v1/keys", headers=headers["admin"]).json()["data"]
    ]


@pytest.mark.parametrize("who", ["officer", "platform"])
def test_only_admins_manage_keys(client, headers, who):
    assert client.post("/v1/keys", json={"role": "admin"}, headers=headers[who]).status_code == 403
    assert client.get("/v1/keys", headers=headers[who]).status_code == 403
    assert client.delete("/v1/keys/1", headers=headers[who]).status_code == 403
    assert client.get("/v1/keys", headers=headers["admin"]).json()["count"] == 3
