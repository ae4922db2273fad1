"""/v1/needs on both stores: CRUD, the owning enterprise check, filters."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("store")

URL = "/v1/needs"


@pytest.fixture
def enterprise_id(client, headers, payloads) -> int:
    return client.post("/v1/enterprises", json=payloads.enterprise(), headers=headers["admin"]).json()["id"]


def _count(client, headers) -> int:
    return client.get(URL, headers=headers["admin"]).json()["count"]


def test_crud(client, headers, payloads, enterprise_id, events):
    r = client.post(
        URL, json=payloads.need(enterprise_id, deadline="2030-01-31"), headers=headers["platform"]
    )
    assert r.status_code == 201, r.text
    need = r.json()
    assert need["enterprise_id"] == enterprise_id and need["status"] == "open"
    assert need["deadline"] == "2030-01-31" and need["industries"] == ["integrated-circuits"]
    assert need["tenant"] == "tenant-a"
    assert client.get(f"{URL}/{need['id']}", headers=headers["officer"]).json() == need

    r = client.patch(
        f"{URL}/{need['id']}",
        json={"status": "matched", "kinds": ["fund", "result"]},
        headers=headers["admin"],
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "matched" and r.json()["kinds"] == ["fund", "result"]
    assert r.json()["title"] == need["title"]

    assert client.delete(f"{URL}/{need['id']}", headers=headers["platform"]).status_code == 204
    assert client.get(f"{URL}/{need['id']}", headers=headers["admin"]).status_code == 404
    nid = need["id"]
    assert events.calls[-3:] == [
        ("demand_changed", [nid], []),
        ("demand_changed", [nid], []),
        ("demand_removed", [nid], []),
    ]


@pytest.mark.parametrize("who", ["other", "missing", "huge"])
def test_enterprise_must_be_the_callers(client, headers, payloads, enterprise_id, who):
    if who == "other":
        target = client.post("/v1/enterprises", json=payloads.enterprise(), headers=headers["other"]).json()[
            "id"
        ]
        r = client.post(URL, json=payloads.need(target), headers=headers["other_platform"])
        assert r.status_code == 201  # fine for its own tenant ...
        r = client.post(URL, json=payloads.need(target), headers=headers["admin"])  # ... not for tenant A
    else:
        r = client.post(
            URL, json=payloads.need(999_999 if who == "missing" else 2**40), headers=headers["admin"]
        )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "enterprise_id"
    assert client.get(URL, params={"visibility": "public"}, headers=headers["admin"]).json()["count"] == (
        1 if who == "other" else 0
    )
    assert all(n["tenant"] is None for n in client.get(URL, headers=headers["admin"]).json()["data"])


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # refused before storage: one store is enough
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"deadline": "end of March"}, "deadline"),
        ({"deadline": "2030-02-30"}, "deadline"),
        ({"title": ""}, "title"),
        ({"kinds": ["spaceship"]}, "kinds.0"),
        ({"trl_min": 11}, "trl_min"),
        ({"amount": -5}, "amount"),
        ({"status": "done"}, "status"),
        ({"id": 1}, "id"),
        ({"created_at": "2020-01-01"}, "created_at"),
        ({"description": "x" * 30_000}, "description"),
    ],
)
def test_bad_need_is_refused(client, headers, payloads, enterprise_id, change, field):
    r = client.post(URL, json=payloads.need(enterprise_id, **change), headers=headers["admin"])
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    assert _count(client, headers) == 0


def test_bad_patch_changes_nothing(client, headers, payloads, enterprise_id):
    need = client.post(URL, json=payloads.need(enterprise_id), headers=headers["admin"]).json()
    for patch in ({"deadline": "soon"}, {"title": None}, {"enterprise_id": 5}, {"trl_min": 0}):
        r = client.patch(f"{URL}/{need['id']}", json=patch, headers=headers["admin"])
        assert r.status_code == 422, (patch, r.text)
    assert client.get(f"{URL}/{need['id']}", headers=headers["admin"]).json() == need


def test_filters(client, headers, payloads, enterprise_id):
    other_ent = client.post(
        "/v1/enterprises", json=payloads.enterprise(name="B"), headers=headers["admin"]
    ).json()["id"]

    def make(eid=enterprise_id, **over):
        r = client.post(URL, json=payloads.need(eid, **over), headers=headers["admin"])
        assert r.status_code == 201, r.text
        return r.json()["id"]

    fund = make(kinds=["fund"])
    anything = make(kinds=[], title="Looking for partners", industries=["人工智能"])
    result = make(other_ent, kinds=["result"], status="closed", region="昌平园")

    def ids(**params):
        body = client.get(URL, params=params, headers=headers["admin"]).json()
        return [x["id"] for x in body["data"]]

    assert ids() == [fund, anything, result]
    assert ids(enterprise_id=other_ent) == [result]
    assert ids(enterprise_id=2**40) == []
    assert ids(kind="fund") == [fund, anything]  # a need naming no kind seeks all
    assert ids(kind="result") == [anything, result]
    assert ids(industry="AI") == [anything]
    assert ids(industry="next-gen-it") == [fund, anything, result]  # both children of the sector
    assert ids(status="closed") == [result]
    assert ids(region="昌平园") == [result]
    assert ids(q="partners") == [anything]
