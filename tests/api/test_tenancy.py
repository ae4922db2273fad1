"""Tenant isolation on both stores: another tenant's private record is a 404 everywhere and never listed;
another tenant's public record can be read but not changed."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("store")

ENTITIES = ["resources", "needs", "enterprises"]
PATCHES = {"resources": {"title": "stolen"}, "needs": {"title": "stolen"}, "enterprises": {"name": "stolen"}}


def _make(client, headers, payloads, entity: str, **over) -> dict:
    if entity == "resources":
        body = payloads.resource(**over)
    elif entity == "enterprises":
        body = payloads.enterprise(**over)
    else:
        eid = client.post("/v1/enterprises", json=payloads.enterprise(), headers=headers["admin"]).json()[
            "id"
        ]
        body = payloads.need(eid, **over)
    r = client.post(f"/v1/{entity}", json=body, headers=headers["admin"])
    assert r.status_code == 201, r.text
    return r.json()


@pytest.mark.parametrize("entity", ENTITIES)
def test_private_record_is_invisible_to_another_tenant(client, headers, payloads, events, entity):
    record = _make(client, headers, payloads, entity, visibility="private")
    url = f"/v1/{entity}/{record['id']}"
    events.clear()
    for who in ("other", "other_platform"):
        for method, kwargs in (("get", {}), ("patch", {"json": PATCHES[entity]}), ("delete", {})):
            r = client.request(method, url, headers=headers[who], **kwargs)
            # the platform role may not write enterprises at all: refused before any lookup
            role_refused = entity == "enterprises" and who == "other_platform" and method != "get"
            assert r.status_code == (403 if role_refused else 404), (who, method, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert "stolen" not in r.text and record.get("title", record.get("name")) not in r.text
        listed = client.get(f"/v1/{entity}", params={"limit": 200}, headers=headers[who]).json()
        assert record["id"] not in [x["id"] for x in listed["data"]]
        assert listed["count"] == 0
        assert (
            client.get(f"/v1/{entity}", params={"visibility": "private"}, headers=headers[who]).json()["data"]
            == []
        )
    # untouched, and still the owner's
    assert client.get(url, headers=headers["admin"]).json() == record
    assert client.get(url, headers=headers["platform"]).status_code == 200
    assert events.calls == []


@pytest.mark.parametrize("entity", ENTITIES)
def test_public_record_is_readable_but_not_writable(client, headers, payloads, events, entity):
    record = _make(client, headers, payloads, entity)
    url = f"/v1/{entity}/{record['id']}"
    events.clear()
    seen = client.get(url, headers=headers["other"])
    assert seen.status_code == 200
    assert seen.json()["tenant"] is None
    assert client.patch(url, json=PATCHES[entity], headers=headers["other"]).status_code == 404
    assert client.delete(url, headers=headers["other"]).status_code == 404
    assert client.get(url, headers=headers["admin"]).json() == record
    assert events.calls == []


def test_missing_and_foreign_ids_read_the_same(client, headers, payloads):
    record = _make(client, headers, payloads, "resources", visibility="private")
    foreign = client.get(f"/v1/resources/{record['id']}", headers=headers["other"]).json()
    missing = client.get("/v1/resources/424242", headers=headers["other"]).json()
    assert foreign["title"] == missing["title"] == "Not found"
    assert foreign["detail"].replace(str(record["id"]), "N") == missing["detail"].replace("424242", "N")


def test_a_tenant_cannot_plant_records_elsewhere(client, headers, payloads):
    for body in (
        {**payloads.resource(), "tenant": "tenant-b"},
        {**payloads.resource(), "tenant_id": "tenant-b"},
    ):
        assert client.post("/v1/resources", json=body, headers=headers["admin"]).status_code == 422
    assert client.get("/v1/resources", headers=headers["other"]).json()["count"] == 0
