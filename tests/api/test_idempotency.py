"""Idempotency-Key on POST, on both stores: replays, reuse with another body, scoping, concurrent duplicates."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.usefixtures("store")


def _count(client, headers, url="/v1/resources", who="admin") -> int:
    return client.get(url, headers=headers[who]).json()["count"]


def test_same_key_same_body_replays(client, headers, payloads, events):
    h = {**headers["admin"], "Idempotency-Key": "k-1"}
    first = client.post("/v1/resources", json=payloads.resource(), headers=h)
    # the same body, serialised differently, is the same request
    again = client.post(
        "/v1/resources",
        content=b'{"details": {"trl": 6, "holder": "\\u6e05\\u534e\\u5927\\u5b66", "ip_status": "granted", '
        b'"patents": ["CN1"], "transfer_modes": ["\\u8bb8\\u53ef"]}, "kind": "result", '
        b'"title": "\\u91cf\\u5b50\\u4f20\\u611f result", "region": "\\u6d77\\u6dc0\\u56ed", '
        b'"industries": ["\\u91cf\\u5b50\\u4fe1\\u606f"], '
        b'"description": "' + payloads.resource()["description"].encode("unicode_escape") + b'"}',
        headers={**h, "Content-Type": "application/json"},
    )
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert _count(client, headers) == 1
    assert events.calls == [("resources_changed", [first.json()["id"]])]


def test_same_key_other_body_is_refused(client, headers, payloads):
    h = {**headers["admin"], "Idempotency-Key": "k-2"}
    assert client.post("/v1/resources", json=payloads.resource(), headers=h).status_code == 201
    r = client.post("/v1/resources", json=payloads.resource(title="另一个"), headers=h)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "Idempotency-Key reused with a different body" in r.json()["detail"]
    assert _count(client, headers) == 1


def test_keys_are_scoped_by_tenant_and_path(client, headers, payloads):
    key = {"Idempotency-Key": "shared"}
    a = client.post("/v1/resources", json=payloads.resource(), headers={**headers["admin"], **key})
    b = client.post("/v1/resources", json=payloads.resource(), headers={**headers["other"], **key})
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]
    e = client.post("/v1/enterprises", json=payloads.enterprise(), headers={**headers["admin"], **key})
    assert e.status_code == 201 and "name" in e.json()
    n = client.post("/v1/needs", json=payloads.need(e.json()["id"]), headers={**headers["admin"], **key})
    assert n.status_code == 201 and "enterprise_id" in n.json()
    n2 = client.post("/v1/needs", json=payloads.need(e.json()["id"]), headers={**headers["admin"], **key})
    assert n2.json() == n.json()
    assert _count(client, headers, "/v1/needs") == 1
    # the same key from another role of the same tenant is the same client
    again = client.post("/v1/resources", json=payloads.resource(), headers={**headers["officer"], **key})
    assert again.json() == a.json()


def test_failed_requests_are_not_remembered(client, headers, payloads):
    h = {**headers["admin"], "Idempotency-Key": "k-3"}
    client.post("/v1/resources", json=payloads.resource(external_id="X"), headers=headers["admin"])
    conflict = client.post("/v1/resources", json=payloads.resource(external_id="X"), headers=h)
    assert conflict.status_code == 409
    # once the conflict is resolved, the same key and body go through
    xid = client.get("/v1/resources", headers=headers["admin"]).json()["data"][0]["id"]
    client.delete(f"/v1/resources/{xid}", headers=headers["admin"])
    retry = client.post("/v1/resources", json=payloads.resource(external_id="X"), headers=h)
    assert retry.status_code == 201
    assert _count(client, headers) == 1


def test_without_a_key_each_post_creates(client, headers, payloads):
    for _ in range(2):
        assert (
            client.post("/v1/resources", json=payloads.resource(), headers=headers["admin"]).status_code
            == 201
        )
    assert _count(client, headers) == 2


def test_overlong_key_is_refused(client, headers, payloads):
    r = client.post(
        "/v1/resources", json=payloads.resource(), headers={**headers["admin"], "Idempotency-Key": "k" * 201}
    )
    assert r.status_code == 422
    assert _count(client, headers) == 0


def test_concurrent_duplicates_create_one_record(client, headers, payloads):
    h = {**headers["admin"], "Idempotency-Key": "race"}
    body = payloads.resource()
    barrier = threading.Barrier(4)
    results: list = []

    def post() -> None:
        barrier.wait()
        results.append(client.post("/v1/resources", json=body, headers=h))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert [r.status_code for r in results] == [201] * 4, [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert _count(client, headers) == 1
