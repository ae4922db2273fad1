"""/v1/resources on both stores: create, read, partial update with merged details, delete, filters, pages."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("store")

URL = "/v1/resources"


def _count(client, headers) -> int:
    return client.get(URL, headers=headers["admin"]).json()["count"]


@pytest.mark.parametrize("kind", ["result", "scenario", "fund", "incubator"])
def test_create_and_get_each_kind(client, headers, payloads, kind):
    r = client.post(URL, json=payloads.resource(kind), headers=headers["admin"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"] > 0 and body["kind"] == kind
    assert (
        body["provider"]
        == payloads.resource(kind)["details"][
            {"result": "holder", "scenario": "owner", "fund": "manager", "incubator": "operator"}[kind]
        ]
    )
    assert body["industries"] == ["quantum-information"]
    assert body["tenant"] == "tenant-a"
    assert body["language"] == "zh"
    got = client.get(f"{URL}/{body['id']}", headers=headers["admin"])
    assert got.status_code == 200
    assert got.json() == body


def test_create_normalises_and_reports_unknown_industries(client, headers, payloads):
    r = client.post(
        URL,
        json=payloads.resource(
            "fund", industries="AI, 芯片；摩托车维修", details={"stages": "天使,B轮", "ticket_min": 1}
        ),
        headers=headers["officer"],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["industries"][:2] == ["artificial-intelligence", "integrated-circuits"]
    assert body["unknown_industries"] == ["摩托车维修"]
    assert body["details"]["stages"] == ["seed", "growth"]
    assert body["provider"] is None


def test_language_detected_unless_given(client, headers, payloads):
    en = client.post(
        URL,
        json=payloads.resource(title="Quantum sensor", description="navigation grade"),
        headers=headers["admin"],
    )
    assert en.json()["language"] == "en"
    given = client.post(URL, json=payloads.resource(language="en"), headers=headers["admin"])
    assert given.json()["language"] == "en"
    zh = client.post(
        URL, json=payloads.resource(title="Sensor", description="用于导航"), headers=headers["admin"]
    )
    assert zh.json()["language"] == "zh"


def test_platform_and_officer_can_write_resources(client, headers, payloads):
    # a platform opens scenarios; results, funds and incubators are the park's (see tests/api/test_permissions.py)
    for who, kind in (("platform", "scenario"), ("officer", "result")):
        r = client.post(URL, json=payloads.resource(kind), headers=headers[who])
        assert r.status_code == 201
        rid = r.json()["id"]
        assert (
            client.patch(f"{URL}/{rid}", json={"status": "paused"}, headers=headers[who]).status_code == 200
        )
        assert client.delete(f"{URL}/{rid}", headers=headers[who]).status_code == 204


def test_external_id_is_unique_per_tenant(client, headers, payloads):
    first = client.post(URL, json=payloads.resource(external_id="R-1"), headers=headers["admin"])
    assert first.status_code == 201
    dup = client.post(URL, json=payloads.resource("fund", external_id="R-1"), headers=headers["officer"])
    assert dup.status_code == 409
    assert dup.headers["content-type"].startswith("application/problem+json")
    assert "external_id 'R-1' is already used" in dup.json()["detail"]
    # another tenant may use the same import key
    assert (
        client.post(URL, json=payloads.resource(external_id="R-1"), headers=headers["other"]).status_code
        == 201
    )
    assert _count(client, headers) == 2  # tenant A's one plus tenant B's public one
    # and PATCH may not steal it either
    second = client.post(URL, json=payloads.resource(external_id="R-2"), headers=headers["admin"]).json()
    r = client.patch(f"{URL}/{second['id']}", json={"external_id": "R-1"}, headers=headers["admin"])
    assert r.status_code == 409
    assert client.get(f"{URL}/{second['id']}", headers=headers["admin"]).json()["external_id"] == "R-2"


def test_patch_merges_details_and_revalidates(client, headers, payloads, events):
    created = client.post(URL, json=payloads.resource("result"), headers=headers["admin"]).json()
    r = client.patch(
        f"{URL}/{created['id']}",
        json={"title": "新标题", "details": {"trl": 8, "holder": "北京大学"}},
        headers=headers["admin"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "新标题"
    assert body["details"]["trl"] == 8
    assert body["details"]["patents"] == ["CN1"]  # kept from the stored details
    assert body["details"]["transfer_modes"] == ["license"]
    assert body["provider"] == "北京大学"
    assert body["description"] == created["description"]
    assert body["updated_at"] >= created["updated_at"]
    assert client.get(f"{URL}/{created['id']}", headers=headers["admin"]).json() == body
    assert ("resources_changed", [created["id"]]) in events.calls


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # refused before storage: one store is enough
@pytest.mark.parametrize(
    ("kind", "patch", "field"),
    [
        ("result", {"details": {"trl": 11}}, "details.trl"),
        ("result", {"details": {"colour": "red"}}, "details.colour"),
        ("scenario", {"details": {"deadline": "next friday"}}, "details.deadline"),
        ("result", {"title": ""}, "title"),
        ("result", {"title": None}, "title"),
        ("result", {"kind": "fund"}, "kind"),
        ("result", {"id": 99}, "id"),
        ("result", {"tenant": "tenant-b"}, "tenant"),
        ("result", {"description": "x" * 30_000}, "description"),
    ],
)
def test_bad_patch_is_refused_and_changes_nothing(client, headers, payloads, events, kind, patch, field):
    created = client.post(URL, json=payloads.resource(kind), headers=headers["admin"]).json()
    events.clear()
    r = client.patch(f"{URL}/{created['id']}", json=patch, headers=headers["admin"])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]]
    assert client.get(f"{URL}/{created['id']}", headers=headers["admin"]).json() == created
    assert events.calls == []


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # refused before storage: one store is enough
@pytest.mark.parametrize(
    ("kind", "patch", "field"),
    [
        ("fund", {"details": {"ticket_min": 9e7}}, "details"),  # now above the stored ticket_max
        ("fund", {"details": {"trl": 5}}, "details.trl"),  # a research result's detail
        ("result", {"details": {"manager": "某资本", "ticket_min": 1e6}}, "details.manager"),
    ],
)
def test_patch_details_at_odds_with_the_stored_resource_conflict(
    client, headers, payloads, events, kind, patch, field
):
    """Details right in themselves (for some kind of resource) but not for this one as stored: 409, not 422."""
    created = client.post(URL, json=payloads.resource(kind), headers=headers["admin"]).json()
    events.clear()
    r = client.patch(f"{URL}/{created['id']}", json=patch, headers=headers["admin"])
    assert r.status_code == 409, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"].startswith(f"the details do not fit this {kind} resource as stored")
    assert field in [e["field"] for e in r.json()["errors"]]
    assert client.get(f"{URL}/{created['id']}", headers=headers["admin"]).json() == created
    assert events.calls == []


def test_patch_nothing_changes_nothing(client, headers, payloads, events):
    created = client.post(URL, json=payloads.resource(), headers=headers["admin"]).json()
    events.clear()
    r = client.patch(f"{URL}/{created['id']}", json={"region": created["region"]}, headers=headers["admin"])
    assert r.status_code == 200
    assert r.json() == created
    assert events.calls == []


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # refused before storage: one store is enough
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "spaceship"}, "kind"),
        ({"details": {"trl": 11}}, "details.trl"),
        ({"kind": "fund", "details": {"ticket_min": 5e7, "ticket_max": 1e6}}, "details"),
        ({"kind": "scenario", "details": {"deadline": "soon"}}, "details.deadline"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"description": "长" * 30_000}, "description"),
        ({"id": 5}, "id"),
        ({"tenant": "tenant-b"}, "tenant"),
        ({"tenant_id": "tenant-b"}, "tenant_id"),
        ({"created_at": "2020-01-01T00:00:00Z"}, "created_at"),
        ({"provider": "me"}, "provider"),
        ({"status": "deleted"}, "status"),
        ({"valid_until": "not a date"}, "valid_until"),
        ({"industries": False}, "industries"),
        ({"kind": "fund", "details": {"sectors": False}}, "details.sectors"),
        ({"kind": "fund", "details": {"stages": 3}}, "details.stages"),
        ({"details": {"transfer_modes": True}}, "details.transfer_modes"),
        ({"kind": "incubator", "details": {"facilities": 1}}, "details.facilities"),
        ({"industries": ["储能", 7]}, "industries.1"),
    ],
)
def test_bad_create_is_refused_and_stores_nothing(client, headers, payloads, events, change, field):
    body = payloads.resource()
    body.update(change)
    r = client.post(URL, json=body, headers=headers["admin"])
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["status"] == 422 and problem["title"] == "Validation failed"
    fields = [e["field"] for e in problem["errors"]]
    assert field in fields or (field == "kind" and "body" in fields), fields
    assert _count(client, headers) == 0
    assert events.calls == []


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # refused before storage: one store is enough
@pytest.mark.parametrize(
    ("change", "field"), [({"title": "a\x00b"}, "title"), ({"details": {"holder": "\x00"}}, "details.holder")]
)
def test_nul_characters_are_refused_on_both_stores(client, headers, payloads, change, field):
    created = client.post(URL, json=payloads.resource(), headers=headers["admin"]).json()
    r = client.post(URL, json={**payloads.resource(), **change}, headers=headers["admin"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field
    r = client.patch(f"{URL}/{created['id']}", json=change, headers=headers["admin"])
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == field
    assert client.get(URL, headers=headers["admin"]).json()["data"] == [created]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # refused before storage: one store is enough
def test_unknown_kind_names_the_choices(client, headers, payloads):
    r = client.post(URL, json={**payloads.resource(), "kind": "spaceship"}, headers=headers["admin"])
    assert r.status_code == 422
    assert "kind" in r.json()["detail"] and "result" in r.json()["detail"]


def test_delete_then_gone(client, headers, payloads, events):
    rid = client.post(URL, json=payloads.resource(), headers=headers["admin"]).json()["id"]
    assert client.delete(f"{URL}/{rid}", headers=headers["admin"]).status_code == 204
    assert client.get(f"{URL}/{rid}", headers=headers["admin"]).status_code == 404
    assert client.delete(f"{URL}/{rid}", headers=headers["admin"]).status_code == 404
    assert client.patch(f"{URL}/{rid}", json={"title": "x"}, headers=headers["admin"]).status_code == 404
    assert events.calls == [("resources_changed", [rid]), ("resources_removed", [rid])]


@pytest.mark.parametrize("rid", ["0", "-1", "99999999999999", "abc"])
def test_odd_ids(client, headers, rid):
    r = client.get(f"{URL}/{rid}", headers=headers["admin"])
    assert r.status_code == (422 if rid == "abc" else 404)


def test_filters(client, headers, payloads):
    def make(kind, who="admin", **over):
        r = client.post(URL, json=payloads.resource(kind, **over), headers=headers[who])
        assert r.status_code == 201, r.text
        return r.json()["id"]

    robot = make("fund", industries=["机器人"], region="昌平园", title="Robotics fund")
    chips = make("result", industries=["芯片"], title="低功耗芯片 100%_off")
    paused = make("incubator", industries=["生物医药"], status="paused", title="生物孵化器")
    private = make("scenario", visibility="private", title="private scenario")
    theirs = make("result", who="other", industries=["芯片"], title="芯片 of tenant B")
    hidden = make("result", who="other", visibility="private", industries=["芯片"], title="芯片 private B")

    def ids(**params):
        r = client.get(URL, params=params, headers=headers["admin"])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["count"] == len(body["data"])
        return sorted(x["id"] for x in body["data"])

    assert ids() == sorted([robot, chips, paused, private, theirs])
    assert ids(kind="result") == sorted([chips, theirs])
    assert ids(industry="半导体") == sorted([chips, theirs])  # alias, normalised
    assert ids(industry="integrated-circuits") == sorted([chips, theirs])
    assert ids(industry="智能装备") == [robot]  # the parent sector finds its children
    assert ids(industry="摩托车") == []
    assert ids(region="昌平园") == [robot]
    assert ids(status="paused") == [paused]
    assert ids(visibility="private") == [private]
    assert ids(q="ROBOTICS") == [robot]
    assert ids(q="芯片") == sorted([chips, theirs])
    assert ids(q="100%_") == [chips]  # LIKE wildcards are literal
    assert ids(q="%") == [chips]
    assert ids(kind="result", industry="芯片", q="tenant") == [theirs]
    assert hidden not in ids()
    assert client.get(URL, params={"kind": "spaceship"}, headers=headers["admin"]).status_code == 422


def test_pagination_walk(client, headers, payloads):
    made = [
        client.post(URL, json=payloads.resource(title=f"成果 {i}"), headers=headers["admin"]).json()["id"]
        for i in range(7)
    ]
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = client.get(URL, params=params, headers=headers["admin"]).json()
        assert body["count"] == 7
        assert len(body["data"]) <= 3
        seen += [x["id"] for x in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == made and pages == 3


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # refused before storage: one store is enough
@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 201}, {"cursor": "garbage!"}, {"cursor": "eyJhZnRlciI6ICJ4In0"}]
)
def test_bad_page_parameters(client, headers, params):
    r = client.get(URL, params=params, headers=headers["admin"])
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] in ("limit", "cursor")


def test_limit_200_is_allowed(client, headers):
    body = client.get(URL, params={"limit": 200}, headers=headers["admin"]).json()
    assert body == {"data": [], "count": 0, "next_cursor": None}


@pytest.mark.parametrize("store", ["sqlite", "postgres"], indirect=True)
def test_ids_beyond_64_bits_get_a_clear_4xx_on_both_stores(client, headers, payloads):
    created = client.post(URL, json=payloads.resource(), headers=headers["admin"]).json()
    huge = 2**64
    for method, url, body in [
        ("GET", f"{URL}/{huge}", None),
        ("PATCH", f"{URL}/{huge}", {"title": "x"}),
        ("DELETE", f"{URL}/{huge}", None),
        ("GET", f"/v1/enterprises/{huge}/subscription", None),
        ("POST", "/v1/needs", {"enterprise_id": huge, "title": "储能需求", "kinds": ["fund"]}),
    ]:
        r = client.request(method, url, json=body, headers=headers["admin"])
        # no record can have such an id: "not found" or "out of range", never a server error
        assert r.status_code in (404, 422), (method, url, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == r.status_code and r.json()["detail"]
        assert "Traceback" not in r.text
    assert client.get(URL, headers=headers["admin"]).json()["data"] == [created]
