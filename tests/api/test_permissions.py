"""The permission matrix through the API: what a platform key, an officer and an admin may and may not do.

A role that may not do an action is a 403 problem that says why; a record the caller may not see is a 404."""

from __future__ import annotations

import pytest

from matcher.digests.tokens import make_unsubscribe_token
from tests.conftest import bearer

pytestmark = pytest.mark.usefixtures("store")

RESOURCES = "/v1/resources"


def _refused(r, role: str) -> None:
    assert r.status_code == 403, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert role in r.json()["detail"]


def _second_platform_key(client, headers) -> dict[str, str]:
    r = client.post(
        "/v1/keys", json={"role": "platform", "name": "another platform"}, headers=headers["admin"]
    )
    assert r.status_code == 201, r.text
    return bearer(r.json()["key"])


def test_a_platform_cannot_create_a_fund_import_results_or_rename_the_parks_fund(client, headers, payloads):
    _refused(client.post(RESOURCES, json=payloads.resource("fund"), headers=headers["platform"]), "platform")
    for kind in ("result", "incubator"):
        _refused(
            client.post(RESOURCES, json=payloads.resource(kind), headers=headers["platform"]), "platform"
        )
    csv = "标题,持有人\n量子传感器,清华\n".encode()
    r = client.post(
        "/v1/resources:import?kind=result",
        content=csv,
        headers={**headers["platform"], "Content-Type": "text/csv"},
    )
    _refused(r, "platform")

    fund = client.post(RESOURCES, json=payloads.resource("fund"), headers=headers["admin"]).json()
    url = f"{RESOURCES}/{fund['id']}"
    _refused(client.patch(url, json={"title": "platform fund"}, headers=headers["platform"]), "platform")
    _refused(client.delete(url, headers=headers["platform"]), "platform")
    assert client.get(url, headers=headers["platform"]).json() == fund  # readable, unchanged
    listed = client.get(RESOURCES, params={"kind": "fund"}, headers=headers["admin"]).json()
    assert listed["count"] == 1


def test_a_platform_manages_its_own_scenario_and_need(client, headers, payloads):
    scenario = client.post(RESOURCES, json=payloads.resource("scenario"), headers=headers["platform"])
    assert scenario.status_code == 201, scenario.text
    url = f"{RESOURCES}/{scenario.json()['id']}"
    r = client.patch(url, json={"title": "医院物流机器人配送场景"}, headers=headers["platform"])
    assert r.status_code == 200 and r.json()["title"] == "医院物流机器人配送场景"

    eid = client.post("/v1/enterprises", json=payloads.enterprise(), headers=headers["officer"]).json()["id"]
    need = client.post("/v1/needs", json=payloads.need(eid), headers=headers["platform"])
    assert need.status_code == 201, need.text
    need_url = f"/v1/needs/{need.json()['id']}"
    r = client.patch(need_url, json={"status": "matched"}, headers=headers["platform"])
    assert r.status_code == 200 and r.json()["status"] == "matched"

    assert client.delete(url, headers=headers["platform"]).status_code == 204
    assert client.delete(need_url, headers=headers["platform"]).status_code == 204
    assert client.get(url, headers=headers["admin"]).status_code == 404
    assert client.get(need_url, headers=headers["admin"]).status_code == 404


def test_a_platform_cannot_touch_records_another_key_created(client, headers, payloads):
    scenario = client.post(RESOURCES, json=payloads.resource("scenario"), headers=headers["platform"]).json()
    url = f"{RESOURCES}/{scenario['id']}"
    eid = client.post("/v1/enterprises", json=payloads.enterprise(), headers=headers["admin"]).json()["id"]
    theirs = client.post("/v1/needs", json=payloads.need(eid), headers=headers["platform"]).json()
    need_url = f"/v1/needs/{theirs['id']}"
    parks = client.post("/v1/needs", json=payloads.need(eid), headers=headers["officer"]).json()

    other_key = _second_platform_key(client, headers)  # the same tenant, another platform's key
    for target in (url, need_url, f"/v1/needs/{parks['id']}"):
        _refused(client.patch(target, json={"title": "taken over"}, headers=other_key), "platform")
        _refused(client.delete(target, headers=other_key), "platform")
        assert client.get(target, headers=other_key).status_code == 200  # it may still read them
    # another tenant's platform cannot even learn that the private ones exist
    private = client.post(
        RESOURCES, json=payloads.resource("scenario", visibility="private"), headers=headers["platform"]
    ).json()
    for method in ("patch", "delete"):
        r = client.request(
            method, f"{RESOURCES}/{private['id']}", json={"title": "x"}, headers=headers["other_platform"]
        )
        assert r.status_code == 404, r.text
    assert client.get(url, headers=headers["admin"]).json() == scenario
    # the park's staff manage what a platform posted
    assert client.patch(url, json={"status": "paused"}, headers=headers["officer"]).status_code == 200
    assert client.delete(need_url, headers=headers["admin"]).status_code == 204


def test_an_officer_manages_no_keys_or_models(client, headers):
    _refused(client.post("/v1/keys", json={"role": "officer"}, headers=headers["officer"]), "officer")
    _refused(client.get("/v1/keys", headers=headers["officer"]), "officer")
    for path in (
        "/v1/models/m1/activate",
        "/v1/models/rollback",
        "/v1/models/m1/trial",
        "/v1/models/trial/stop",
    ):
        _refused(client.post(path, headers=headers["officer"]), "officer")
    assert client.get("/v1/models", headers=headers["officer"]).status_code == 200


def test_an_unsubscribe_by_the_recipient_wins_over_an_officer(client, headers, payloads, settings):
    eid = client.post("/v1/enterprises", json=payloads.enterprise(), headers=headers["officer"]).json()["id"]
    token = make_unsubscribe_token(eid, settings.resolved_secret())
    assert client.post("/v1/unsubscribe", params={"token": token}).json()["unsubscribed"] is True
    url = f"/v1/enterprises/{eid}/subscription"
    _refused(client.put(url, json={"unsubscribed": False}, headers=headers["officer"]), "officer")
    assert client.get(url, headers=headers["officer"]).json()["unsubscribed"] is True
    # other preferences an officer still sets; the unsubscribe stays
    r = client.put(url, json={"frequency": "biweekly", "unsubscribed": True}, headers=headers["officer"])
    assert r.status_code == 200 and r.json()["unsubscribed"] is True
    r = client.put(url, json={"unsubscribed": False}, headers=headers["admin"])
    assert r.status_code == 200 and r.json()["unsubscribed"] is False
    _refused(client.put(url, json={"frequency": "weekly"}, headers=headers["platform"]), "platform")
    _refused(client.get(url, headers=headers["platform"]), "platform")


def test_an_admin_does_everything_of_its_tenant(client, headers, payloads, settings):
    fund = client.post(RESOURCES, json=payloads.resource("fund"), headers=headers["admin"])
    assert fund.status_code == 201
    url = f"{RESOURCES}/{fund.json()['id']}"
    assert (
        client.patch(url, json={"title": "园区母基金"}, headers=headers["admin"]).json()["title"]
        == "园区母基金"
    )
    r = client.post(
        "/v1/resources:import?kind=result",
        content="标题,持有人\n量子传感器,清华\n".encode(),
        headers={**headers["admin"], "Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["rows"][0]["status"] == "created"
    assert client.post("/v1/keys", json={"role": "officer"}, headers=headers["admin"]).status_code == 201
    # authorised: an unknown model is simply not found
    assert client.post("/v1/models/m1/activate", headers=headers["admin"]).status_code == 404
    assert client.post("/v1/digests:run", json={"dry_run": True}, headers=headers["admin"]).status_code != 403
    assert client.get("/v1/stats", headers=headers["admin"]).status_code == 200
    assert client.delete(url, headers=headers["admin"]).status_code == 204
