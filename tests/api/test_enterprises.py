"""/v1/enterprises on both stores: CRUD, the public profile other tenants see, roles, cascade on delete."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("store")

URL = "/v1/enterprises"
PRIVATE_FIELDS = (
    "email",
    "digest_frequency",
    "digest_kinds",
    "language",
    "unsubscribed",
    "tenant",
    "external_id",
)


def test_crud(client, headers, payloads, events):
    r = client.post(URL, json=payloads.enterprise(external_id="E-1", stage="B轮"), headers=headers["officer"])
    assert r.status_code == 201, r.text
    body = r.json()
    eid = body["id"]
    assert body["stage"] == "growth"
    assert body["industries"] == ["integrated-circuits"]
    assert body["email"] == "contact@example.com"
    assert body["tenant"] == "tenant-a" and body["external_id"] == "E-1"
    assert body["digest_frequency"] == "weekly" and body["unsubscribed"] is False
    assert client.get(f"{URL}/{eid}", headers=headers["platform"]).json() == body  # platform may read

    r = client.patch(f"{URL}/{eid}", json={"tier": "key_account", "email": None}, headers=headers["admin"])
    assert r.status_code == 200, r.text
    assert r.json()["tier"] == "key_account" and r.json()["email"] is None
    assert r.json()["name"] == body["name"]

    assert client.delete(f"{URL}/{eid}", headers=headers["admin"]).status_code == 204
    assert client.get(f"{URL}/{eid}", headers=headers["admin"]).status_code == 404
    assert events.calls == [
        ("demand_changed", [], [eid]),
        ("demand_changed", [], [eid]),
        ("demand_removed", [], [eid]),
    ]


def test_other_tenant_sees_the_public_profile_only(client, headers, payloads):
    eid = client.post(URL, json=payloads.enterprise(external_id="E-9"), headers=headers["admin"]).json()["id"]
    seen = client.get(f"{URL}/{eid}", headers=headers["other"])
    assert seen.status_code == 200
    body = seen.json()
    assert body["name"] == "智芯科技有限公司" and body["industries"] == ["integrated-circuits"]
    for field in PRIVATE_FIELDS:
        assert body[field] is None, field
    listed = client.get(URL, headers=headers["other"]).json()["data"]
    assert [x["id"] for x in listed] == [eid]
    assert all(listed[0][f] is None for f in PRIVATE_FIELDS)
    assert "contact@example.com" not in client.get(URL, headers=headers["other"]).text
    # but cannot change or delete it, and learns nothing from trying
    assert client.patch(f"{URL}/{eid}", json={"name": "x"}, headers=headers["other"]).status_code == 404
    assert client.delete(f"{URL}/{eid}", headers=headers["other"]).status_code == 404
    assert client.get(f"{URL}/{eid}", headers=headers["admin"]).json()["name"] == "智芯科技有限公司"


def test_platform_cannot_write_enterprises(client, headers, payloads):
    r = client.post(URL, json=payloads.enterprise(), headers=headers["platform"])
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "platform" in r.json()["detail"]
    assert client.get(URL, headers=headers["admin"]).json()["count"] == 0
    eid = client.post(URL, json=payloads.enterprise(), headers=headers["admin"]).json()["id"]
    assert client.patch(f"{URL}/{eid}", json={"name": "x"}, headers=headers["platform"]).status_code == 403
    assert client.delete(f"{URL}/{eid}", headers=headers["platform"]).status_code == 403
    assert client.get(f"{URL}/{eid}", headers=headers["platform"]).json()["name"] == "智芯科技有限公司"


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # refused before storage: one store is enough
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"email": "not-an-email"}, "email"),
        ({"stage": "teenager"}, "stage"),
        ({"digest_kinds": ["pizza"]}, "digest_kinds.0"),
        ({"unsubscribed": True}, "unsubscribed"),
        ({"tenant": "tenant-b"}, "tenant"),
    ],
)
def test_bad_enterprise_is_refused(client, headers, payloads, change, field):
    r = client.post(URL, json=payloads.enterprise(**change), headers=headers["admin"])
    assert r.status_code == 422
    assert field in [e["field"] for e in r.json()["errors"]]
    assert client.get(URL, headers=headers["admin"]).json()["count"] == 0


def test_external_id_conflict(client, headers, payloads):
    assert (
        client.post(URL, json=payloads.enterprise(external_id="E-1"), headers=headers["admin"]).status_code
        == 201
    )
    r = client.post(URL, json=payloads.enterprise(external_id="E-1", name="其他"), headers=headers["admin"])
    assert r.status_code == 409 and "E-1" in r.json()["detail"]
    assert client.get(URL, headers=headers["admin"]).json()["count"] == 1


def test_delete_removes_its_needs(client, headers, payloads, events):
    eid = client.post(URL, json=payloads.enterprise(), headers=headers["admin"]).json()["id"]
    nids = [
        client.post("/v1/needs", json=payloads.need(eid), headers=headers["admin"]).json()["id"]
        for _ in range(2)
    ]
    events.clear()
    assert client.delete(f"{URL}/{eid}", headers=headers["officer"]).status_code == 204
    assert client.get("/v1/needs", headers=headers["admin"]).json()["count"] == 0
    assert events.calls == [("demand_removed", nids, [eid])]


def test_filters_and_pages(client, headers, payloads):
    def make(who="admin", **over) -> int:
        r = client.post(URL, json=payloads.enterprise(**over), headers=headers[who])
        assert r.status_code == 201, r.text
        return r.json()["id"]

    a = make(name="Alpha Robotics", industries=["机器人"], stage="seed")
    b = make(name="Beta 芯片", tier="incubating", region="昌平园")
    c = make(name="Gamma", visibility="private")
    hidden = make("other", visibility="private")

    def ids(who="admin", **params):
        return [x["id"] for x in client.get(URL, params=params, headers=headers[who]).json()["data"]]

    assert ids() == [a, b, c]
    assert ids(industry="智能装备") == [a]
    assert ids(stage="seed") == [a]
    assert ids(tier="incubating") == [b]
    assert ids(region="昌平园") == [b]
    assert ids(q="alpha") == [a]
    assert ids(visibility="private") == [c]
    assert ids("other") == [a, b, hidden]
    first = client.get(URL, params={"limit": 2}, headers=headers["admin"]).json()
    assert [x["id"] for x in first["data"]] == [a, b] and first["count"] == 3
    rest = client.get(
        URL, params={"limit": 2, "cursor": first["next_cursor"]}, headers=headers["admin"]
    ).json()
    assert [x["id"] for x in rest["data"]] == [c] and rest["next_cursor"] is None
