"""/v1/feedback: only for matches that were shown, fixed actions and reasons, idempotent retries, tenancy."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from matcher.domain.tables import Feedback, Impression
from tests.conftest import TENANT

URL = "/v1/feedback"


@pytest.fixture
def shown(client, headers, payloads, engine):
    """Two resources of tenant A, both served to tenant A under request 'req-1' (positions 1 and 2)."""
    ids = []
    for title in ("量子传感器", "激光雷达"):
        r = client.post("/v1/resources", json=payloads.resource(title=title), headers=headers["admin"])
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    private = client.post(
        "/v1/resources",
        json=payloads.resource(title="内部成果", visibility="private"),
        headers=headers["other"],
    ).json()["id"]
    with Session(engine) as s:
        for pos, rid in enumerate(ids, start=1):
            s.add(
                Impression(
                    request_id="req-1",
                    tenant_id="tenant-a",
                    resource_id=rid,
                    position=pos,
                    score=0.9 / pos,
                    features={"dense": 0.5, "lexical": 0.4, "relevance": 0.8 / pos},
                    model_version="transparent-1",
                )
            )
        s.commit()
    return {"ids": ids, "private": private}


def _count(engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(Feedback)).one()


def test_reasons_are_bilingual(client, headers):
    r = client.get(f"{URL}/reasons", headers=headers["platform"])
    assert r.status_code == 200
    body = r.json()
    codes = [x["code"] for x in body["data"]]
    assert codes == [
        "too_early",
        "budget_mismatch",
        "region_mismatch",
        "already_known",
        "unclear",
        "not_relevant",
        "other",
    ]
    assert body["data"][0]["zh"] == "技术成熟度不足"


def test_records_feedback_for_a_shown_match(client, headers, shown, engine):
    r = client.post(
        URL,
        json={
            "request_id": "req-1",
            "resource_id": shown["ids"][1],
            "action": "rejected",
            "reason": "too_early",
        },
        headers=headers["officer"],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["position"] == 2 and body["reason"] == "too_early"
    deal = client.post(
        URL,
        json={"request_id": "req-1", "resource_id": shown["ids"][0], "action": "deal", "amount": 1e6},
        headers=headers["admin"],
    )
    assert deal.status_code == 201 and deal.json()["amount"] == 1e6
    assert _count(engine) == 2


def test_never_shown_is_422(client, headers, shown):
    r = client.post(
        URL,
        json={"request_id": "req-2", "resource_id": shown["ids"][0], "action": "clicked"},
        headers=headers["admin"],
    )
    assert r.status_code == 422
    assert "never shown" in r.json()["detail"]
    assert r.json()["errors"][0]["field"] == "request_id"
    # shown to tenant A, not to tenant B
    other = client.post(
        URL,
        json={"request_id": "req-1", "resource_id": shown["ids"][0], "action": "clicked"},
        headers=headers["other"],
    )
    assert other.status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "liked"}, "action"),
        ({"action": "rejected", "reason": "too_expensive"}, "reason"),
        ({"action": "clicked", "amount": 5}, "amount"),
        ({"action": "deal", "amount": -1}, "amount"),
    ],
)
def test_bad_action_or_reason_names_the_field(client, headers, shown, body, field):
    r = client.post(
        URL, json={"request_id": "req-1", "resource_id": shown["ids"][0], **body}, headers=headers["admin"]
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field


def test_records_the_caller_cannot_see_are_404(client, headers, shown):
    for rid in (shown["private"], 999_999):
        r = client.post(
            URL,
            json={"request_id": "req-1", "resource_id": rid, "action": "clicked"},
            headers=headers["admin"],
        )
        assert r.status_code == 404, r.text


def test_duplicate_event_with_same_key_is_replayed(client, headers, shown, engine):
    body = {"request_id": "req-1", "resource_id": shown["ids"][0], "action": "accepted"}
    h = {**headers["admin"], "Idempotency-Key": "evt-1"}
    first = client.post(URL, json=body, headers=h)
    second = client.post(URL, json=body, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert _count(engine) == 1
    changed = client.post(URL, json={**body, "action": "rejected"}, headers=h)
    assert changed.status_code == 422
    assert _count(engine) == 1


def test_stats_funnel_and_reasons(client, headers, shown):
    ids = shown["ids"]
    for i, (rid, action, extra) in enumerate(
        [
            (ids[0], "clicked", {}),
            (ids[0], "accepted", {}),
            (ids[0], "deal", {"amount": 2e6}),
            (ids[1], "rejected", {"reason": "budget_mismatch"}),
        ]
    ):
        r = client.post(
            URL,
            json={"request_id": "req-1", "resource_id": rid, "action": action, **extra},
            headers={**headers["admin"], "Idempotency-Key": f"k{i}"},
        )
        assert r.status_code == 201, r.text
    s = client.get("/v1/stats", headers=headers["officer"])
    assert s.status_code == 200, s.text
    body = s.json()
    assert body["by_kind"]["result"]["shown"] == 2
    assert (
        body["total"]["accepted"] == 1 and body["total"]["deals"] == 1 and body["total"]["deal_amount"] == 2e6
    )
    assert body["rejection_reasons"] == {"budget_mismatch": 1}
    assert body["never_matched_resources"]["count"] == 0
    # another tenant sees none of it
    other = client.get("/v1/stats", headers=headers["other"]).json()
    assert other["total"]["shown"] == 0 and other["never_matched_resources"]["count"] == 1


def test_first_feedback_changes_nothing_and_training_refuses(
    client, headers, shown, settings, monkeypatch, capsys
):
    r = client.post(
        URL,
        json={"request_id": "req-1", "resource_id": shown["ids"][1], "action": "accepted"},
        headers=headers["admin"],
    )
    assert r.status_code == 201
    monkeypatch.setenv("MATCHER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MATCHER_DATABASE_URL", settings.sqlalchemy_url)
    from matcher.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "ranker", "--tenant", TENANT])
    assert exc.value.code != 0
    assert "too little data" in capsys.readouterr().err
    assert client.get("/v1/models", headers=headers["admin"]).json()["active"] is None


def test_end_to_end_match_then_feedback_then_live_swap(
    engine_client, headers, payloads, engine_settings, make_ranker
):
    """A served match can be rated; activating a model swaps the live ranker and rollback restores the default."""
    from training.registry import TrainingRegistry as ModelRegistry

    c = engine_client
    for title in ("量子传感器导航", "激光雷达测距"):
        assert (
            c.post("/v1/resources", json=payloads.resource(title=title), headers=headers["admin"]).status_code
            == 201
        )
    m = c.post("/v1/match", json={"text": "量子传感器", "kinds": ["result"]}, headers=headers["admin"])
    assert m.status_code == 200, m.text
    body = m.json()
    assert body["model_version"] == "transparent-1" and body["matches"]
    rid = body["matches"][0]["resource"]["id"]
    fb = c.post(
        URL,
        json={"request_id": body["request_id"], "resource_id": rid, "action": "accepted"},
        headers=headers["officer"],
    )
    assert fb.status_code == 201, fb.text
    assert fb.json()["position"] == 1
    v = ModelRegistry.for_settings(engine_settings).register(make_ranker(), scope=TENANT)
    assert c.post(f"/v1/models/{v.id}/activate", headers=headers["admin"]).json()["serving"] == v.id
    again = c.post(
        "/v1/match", json={"text": "量子传感器", "kinds": ["result"]}, headers=headers["admin"]
    ).json()
    assert again["model_version"] == v.id and all(0 <= x["score"] <= 1 for x in again["matches"])
    assert c.post("/v1/models/rollback", headers=headers["admin"]).json()["serving"] == "transparent-1"
