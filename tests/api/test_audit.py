"""The audit trail over the API on both stores: one event per action with its actor and no secret, events that
outlive their record, reading restricted to the tenant's admin, another tenant's events never visible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.routes.digests import get_digest_source
from matcher.digests.sources import KeywordSource
from matcher.digests.tokens import make_unsubscribe_token
from matcher.domain.tables import Enterprise, Resource
from tests.conftest import TENANT, Keys
from training.registry import TrainingRegistry

pytestmark = pytest.mark.usefixtures("store")


def _key_id(client: TestClient, headers: dict[str, str], plaintext: str) -> int:
    """The id of a key, found by its prefix in the tenant's key list."""
    prefix = plaintext.split("_")[1]
    rows = client.get("/v1/keys", headers=headers).json()["data"]
    return next(r["id"] for r in rows if r["prefix"] == prefix)


def _events(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/audit", params={"limit": 200, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def _by_action(events: list[dict[str, Any]]) -> dict[tuple[str, str, str | None], list[dict[str, Any]]]:
    out: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
    for e in events:
        out.setdefault((e["action"], e["record_type"], e["record_id"]), []).append(e)
    return out


def test_each_write_leaves_one_event_with_its_actor_and_no_secret(client, headers, keys: Keys, payloads):
    admin = headers["admin"]
    admin_id = _key_id(client, admin, keys.admin)
    res = client.post("/v1/resources", json=payloads.resource(), headers=admin).json()
    client.patch(f"/v1/resources/{res['id']}", json={"title": "新标题", "region": "朝阳"}, headers=admin)
    client.patch(f"/v1/resources/{res['id']}", json={"title": "新标题"}, headers=admin)  # changes nothing
    assert client.delete(f"/v1/resources/{res['id']}", headers=admin).status_code == 204
    ent = client.post("/v1/enterprises", json=payloads.enterprise(), headers=admin).json()
    need = client.post("/v1/needs", json=payloads.need(ent["id"]), headers=admin).json()
    client.patch(f"/v1/needs/{need['id']}", json={"amount": 3e7}, headers=admin)
    put = client.put(
        f"/v1/enterprises/{ent['id']}/subscription", json={"frequency": "biweekly"}, headers=admin
    )
    assert put.status_code == 200, put.text
    made = client.post("/v1/keys", json={"role": "officer", "name": "ops"}, headers=admin).json()
    assert client.delete(f"/v1/keys/{made['id']}", headers=admin).status_code == 204
    assert client.delete(f"/v1/enterprises/{ent['id']}", headers=admin).status_code == 204

    r = client.get("/v1/audit", params={"limit": 200}, headers=admin)
    assert r.status_code == 200
    for secret in (made["key"], keys.admin, keys.officer, payloads.resource()["description"]):
        assert secret not in r.text
    events = r.json()["data"]
    # the fixture's keys were created by the operator of the process (no API key)
    fixture_keys = [e for e in events if e["actor"] == "operator"]
    assert {(e["action"], e["actor_key_id"], e["actor_role"]) for e in fixture_keys} == {
        ("key.create", None, None)
    }
    grouped = _by_action([e for e in events if e["actor"] != "operator"])
    rid, eid, nid, kid = str(res["id"]), str(ent["id"]), str(need["id"]), str(made["id"])
    expected = {
        ("create", "resource", rid): {},
        ("update", "resource", rid): {"fields": ["region", "title"]},
        ("delete", "resource", rid): {},
        ("create", "enterprise", eid): {},
        ("create", "need", nid): {},
        ("update", "need", nid): {"fields": ["amount"]},
        ("subscription.update", "enterprise", eid): {"fields": ["digest_frequency"]},
        ("key.create", "api_key", kid): {"role": "officer", "prefix": made["key"].split("_")[1]},
        ("key.revoke", "api_key", kid): {"role": "officer"},
        ("delete", "enterprise", eid): {"needs_removed": 1},
    }
    assert set(grouped) == set(expected)
    for key, summary in expected.items():
        (event,) = grouped[key]
        assert event["summary"] == summary, key
        assert (event["actor"], event["actor_key_id"], event["actor_role"]) == (
            f"key:{admin_id}",
            admin_id,
            "admin",
        )
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)


def test_events_outlive_the_record_and_a_refused_write_leaves_none(client, headers, payloads):
    admin = headers["admin"]
    res = client.post("/v1/resources", json=payloads.resource(external_id="X1"), headers=admin).json()
    assert (
        client.post("/v1/resources", json=payloads.resource(external_id="X1"), headers=admin).status_code
        == 409
    )
    assert client.delete(f"/v1/resources/{res['id']}", headers=admin).status_code == 204
    assert client.get(f"/v1/resources/{res['id']}", headers=admin).status_code == 404
    events = _events(client, admin, record_type="resource", record_id=str(res["id"]))
    assert [e["action"] for e in events] == ["create", "delete"]
    assert len(_events(client, admin, action="create")) == 1  # the refused duplicate wrote no event


def test_only_the_tenants_admin_reads_and_only_its_own_events(client, headers, payloads):
    res = client.post("/v1/resources", json=payloads.resource(), headers=headers["officer"]).json()
    for who in ("officer", "platform", "other_platform"):
        r = client.get("/v1/audit", headers=headers[who])
        assert r.status_code == 403, who
        assert r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/audit").status_code == 401
    other = client.post("/v1/resources", json=payloads.resource(), headers=headers["other"]).json()
    mine = _events(client, headers["admin"], record_type="resource")
    theirs = _events(client, headers["other"], record_type="resource")
    assert [(e["record_id"], e["actor_role"]) for e in mine] == [(str(res["id"]), "officer")]
    assert [e["record_id"] for e in theirs] == [str(other["id"])]
    assert _events(client, headers["other"], record_type="resource", record_id=str(res["id"])) == []


def test_filters_and_cursor_pages(client, headers, payloads):
    admin = headers["admin"]
    ids = [
        client.post("/v1/resources", json=payloads.resource(), headers=admin).json()["id"] for _ in range(3)
    ]
    client.delete(f"/v1/resources/{ids[0]}", headers=admin)
    seen, cursor = [], None
    while True:
        params = {"limit": 1, "action": "create", **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/audit", params=params, headers=admin).json()
        seen += [e["record_id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(i) for i in ids]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert _events(client, admin, since=future) == []
    assert len(_events(client, admin, since=past, record_type="resource")) == 4
    assert client.get("/v1/audit", params={"cursor": "nope"}, headers=admin).status_code == 422


def test_an_import_leaves_one_event_per_committed_batch_with_counts(client, headers, keys: Keys):
    officer_id = _key_id(client, headers["admin"], keys.officer)
    csv = "编号,标题,简介,持有人\n" + "".join(f"R{i},成果{i},描述{i},大学{i}\n" for i in range(3))
    h = {**headers["officer"], "Content-Type": "text/csv"}
    assert client.post("/v1/resources:import?kind=result", content=csv.encode(), headers=h).status_code == 200
    assert client.post("/v1/resources:import?kind=result", content=csv.encode(), headers=h).status_code == 200
    (event,) = _events(client, headers["admin"], action="import")  # the unchanged re-import wrote nothing
    assert event["summary"] == {"created": 3, "updated": 0, "unchanged": 0, "rejected": 0}
    assert (event["actor_key_id"], event["actor_role"], event["record_type"]) == (
        officer_id,
        "officer",
        "resource",
    )


def test_model_activation_trial_and_rollback_are_audited(client, headers, keys: Keys, settings, make_ranker):
    admin_id = _key_id(client, headers["admin"], keys.admin)
    reg = TrainingRegistry.for_settings(settings)
    a, b = reg.register(make_ranker(), scope=TENANT), reg.register(make_ranker(), scope=TENANT)
    assert client.post(f"/v1/models/{a.id}/activate", headers=headers["admin"]).status_code == 200
    assert client.post(f"/v1/models/{b.id}/trial", headers=headers["admin"]).status_code == 201
    assert client.post("/v1/models/trial/stop", headers=headers["admin"]).status_code == 200
    assert client.post("/v1/models/rollback", headers=headers["admin"]).status_code == 200
    assert client.post(f"/v1/models/{a.id}/activate", headers=headers["officer"]).status_code == 403
    events = _events(client, headers["admin"], record_type="model")
    assert [(e["action"], e["record_id"], e["summary"]) for e in events] == [
        ("model.activate", a.id, {}),
        ("model.trial", b.id, {"trial": "started"}),
        ("model.trial", b.id, {"trial": "stopped"}),
        ("model.rollback", None, {}),  # back to the transparent default
    ]
    assert {e["actor_key_id"] for e in events} == {admin_id}
    assert _events(client, headers["other"], record_type="model") == []


class _Outbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.messages.append(message)

    def close(self) -> None:
        pass


def test_digest_sends_and_unsubscribes_are_audited(client, headers, engine, settings):
    outbox = _Outbox()
    client.app.state.app_state.email_sender = outbox
    client.app.dependency_overrides[get_digest_source] = lambda: KeywordSource(engine)
    with Session(engine, expire_on_commit=False) as s:
        ent = Enterprise(
            tenant_id=TENANT, name="星河机器人", description="工业机器人 视觉检测", email="a@example.com"
        )
        s.add(ent)
        s.add(
            Resource(
                tenant_id=TENANT, kind="result", title="工业机器人视觉检测", description="工业机器人 视觉检测"
            )
        )
        s.commit()
    assert client.post("/v1/digests:run", json={}, headers=headers["officer"]).json()["sent"] == 1
    assert client.post("/v1/digests:run", json={}, headers=headers["officer"]).json()["sent"] == 0
    token = make_unsubscribe_token(ent.id, settings.resolved_secret())
    assert client.post("/v1/unsubscribe", params={"token": token}).status_code == 200
    assert client.post("/v1/unsubscribe", params={"token": token}).status_code == 200  # changes nothing

    r = client.get("/v1/audit", params={"record_type": "enterprise"}, headers=headers["admin"])
    assert token not in r.text and "a@example.com" not in r.text
    events = [(e["action"], e["actor"], e["actor_key_id"], e["record_id"]) for e in r.json()["data"]]
    assert events == [
        ("digest.send", "digest-runner", None, str(ent.id)),
        ("unsubscribe", "unsubscribe-link", None, str(ent.id)),
    ]
    sent = r.json()["data"][0]["summary"]
    assert sent["items"] >= 1 and sent["period"] and len(outbox.messages) == 1


def test_an_event_leads_to_its_request(client, headers, payloads):
    """The X-Request-ID the API echoes is kept with each event the request caused."""
    h = {**headers["admin"], "X-Request-ID": "req-audit-0001"}
    r = client.post("/v1/resources", json=payloads.resource(), headers=h)
    assert r.status_code == 201 and r.headers["x-request-id"] == "req-audit-0001"
    minted = client.post("/v1/resources", json=payloads.resource(), headers=headers["admin"])
    events = _events(client, headers["admin"], record_type="resource", action="create")
    by_record = {e["record_id"]: e["request_id"] for e in events}
    assert by_record[str(r.json()["id"])] == "req-audit-0001"
    assert by_record[str(minted.json()["id"])] == minted.headers["x-request-id"]
