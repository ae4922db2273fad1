"""Read-your-writes over the change feed: write responses say their seq, reads with min_seq wait for it or
answer 503 with Retry-After; /readyz and /metrics say where the replica stands on the feed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlmodel import Session

from api.app import create_app
from matcher.domain.schemas import ResourceCreate
from matcher.settings import Settings
from matcher.store import records

pytestmark = pytest.mark.usefixtures("store")


@pytest.fixture
def fast_client(engine_settings: Settings, engine) -> Iterator[TestClient]:
    settings = engine_settings.model_copy(update={"min_seq_wait_s": 0.3, "feed_poll_s": 0.05})
    with TestClient(create_app(settings)) as c:
        yield c


def test_writes_say_their_seq(client, headers, payloads):
    r = client.post("/v1/resources", json=payloads.resource(), headers=headers["admin"])
    assert r.status_code == 201 and r.json()["seq"] == 1 and r.headers["X-Matcher-Seq"] == "1"
    rid = r.json()["id"]
    r = client.patch(f"/v1/resources/{rid}", json={"title": "新标题"}, headers=headers["admin"])
    assert r.json()["seq"] == 2 and r.headers["X-Matcher-Seq"] == "2"
    r = client.patch(f"/v1/resources/{rid}", json={"title": "新标题"}, headers=headers["admin"])  # no change
    assert r.json()["seq"] == 2 and r.headers["X-Matcher-Seq"] == "2"
    got = client.get(f"/v1/resources/{rid}", headers=headers["admin"])
    assert got.json()["seq"] == 2  # the record's last write
    assert "X-Matcher-Seq" not in got.headers  # a read writes nothing
    listed = client.get("/v1/resources", headers=headers["admin"]).json()["data"]
    assert [(v["id"], v["seq"]) for v in listed] == [(rid, 2)]
    r = client.delete(f"/v1/resources/{rid}", headers=headers["admin"])
    assert r.status_code == 204 and r.headers["X-Matcher-Seq"] == "3"
    ent = client.post("/v1/enterprises", json=payloads.enterprise(), headers=headers["admin"])
    assert ent.json()["seq"] == 4 and ent.headers["X-Matcher-Seq"] == "4"
    need = client.post("/v1/needs", json=payloads.need(ent.json()["id"]), headers=headers["admin"])
    assert need.json()["seq"] == 5


def test_an_import_says_its_seq(client, headers):
    csv = "title,description\n量子传感器,高精度\n钙钛矿电池,光伏\n".encode()
    r = client.post(
        "/v1/resources:import?kind=result",
        content=csv,
        headers={**headers["admin"], "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["seq"] == 2 and r.headers["X-Matcher-Seq"] == "2"
    dry = client.post(
        "/v1/resources:import?kind=result&dry_run=true",
        content=csv,
        headers={**headers["admin"], "Content-Type": "text/csv"},
    )
    assert "seq" not in dry.json() or dry.json()["seq"] is None


def test_min_seq_waits_for_a_write_of_another_process(fast_client, engine, headers, callers, payloads):
    with Session(engine, expire_on_commit=False) as s:  # written beside the app, not through it
        row = records.create_resource(
            s, caller=callers["admin"], data=TypeAdapter(ResourceCreate).validate_python(payloads.resource())
        )
    r = fast_client.get("/v1/search", params={"q": "量子传感", "min_seq": 1}, headers=headers["admin"])
    assert r.status_code == 200, r.text
    assert row.id in [m["resource"]["id"] for m in r.json()["matches"]]
    r = fast_client.get(f"/v1/resources/{row.id}", headers={**headers["admin"], "X-Matcher-Min-Seq": "1"})
    assert r.status_code == 200


def test_min_seq_not_applied_in_time_is_503_with_retry_after(fast_client, headers):
    for url, kw in (
        ("/v1/search", {"params": {"q": "量子", "min_seq": 99}}),
        ("/v1/resources/1", {"headers": {"X-Matcher-Min-Seq": "99"}}),
    ):
        r = fast_client.get(
            url, headers={**headers["admin"], **kw.get("headers", {})}, params=kw.get("params")
        )
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["Retry-After"] == "1" and "99" in r.json()["detail"]
    r = fast_client.post("/v1/match?min_seq=99", json={"text": "量子"}, headers=headers["admin"])
    assert r.status_code == 503
    r = fast_client.get("/v1/search", params={"q": "量子", "min_seq": 99})
    assert r.status_code == 401  # no key: refused before any wait


def test_readyz_and_metrics_say_the_feed_position(fast_client, engine, headers, callers, payloads):
    ready = fast_client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["feed"]["lag_entries"] == 0
    state = fast_client.app.state.app_state
    state.matcher.follower.close()  # this replica stops following
    with Session(engine, expire_on_commit=False) as s:
        records.create_resource(
            s, caller=callers["admin"], data=TypeAdapter(ResourceCreate).validate_python(payloads.resource())
        )
    state.settings.__dict__["ready_max_lag_seq"] = 0  # any entry behind is too many
    behind = fast_client.get("/readyz")
    assert behind.status_code == 503 and behind.json()["checks"]["feed"] == "behind"
    assert behind.json()["feed"]["head_seq"] == 1 and behind.json()["feed"]["applied_seq"] == 0
    metrics = fast_client.get("/metrics").text
    assert "parkmatch_feed_head_seq 1.0" in metrics and "parkmatch_feed_applied_seq 0.0" in metrics
    assert "parkmatch_feed_gaps_total 0.0" in metrics and "parkmatch_feed_lag_seconds" in metrics
