"""Docking events over HTTP with the real engine: the plan's rules, scores from the match pipeline, preferences,
who was left out, agendas (XLSX, email), outcomes as feedback, and the bad input the service refuses."""

from __future__ import annotations

import io
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

pytestmark = pytest.mark.usefixtures("store")
PROBLEM = "application/problem+json"
SLOTS = [
    {"start": "09:00", "end": "09:20"},
    {"start": "09:20", "end": "09:40"},
    {"start": "10:00", "end": "10:20"},
]

ENTERPRISES = [
    ("锂电储能科技", "磷酸铁锂储能电池系统集成，正极材料与电池管理", ["储能"]),
    ("智眸医疗影像", "人工智能医学影像辅助诊断，肺结节CT筛查", ["数字医疗", "人工智能"]),
    ("芯算微电子", "车规级集成电路芯片设计与功率器件", ["集成电路"]),
    ("慧行机器人", "医院物流配送机器人与自主导航", ["机器人"]),
]
RESOURCES = [
    (
        "result",
        "锂电池正极材料低成本制备技术",
        "磷酸铁锂正极材料制备方法，循环寿命高，适用于储能电池",
        ["储能"],
        {"holder": "材料所", "trl": 7},
    ),
    (
        "scenario",
        "三甲医院AI辅助影像诊断场景",
        "放射科胸部CT肺结节筛查，人工智能辅助诊断系统",
        ["数字医疗", "人工智能"],
        {"owner": "京华医院"},
    ),
    ("fund", "集成电路产业基金", "投资集成电路芯片设计与功率器件企业", ["集成电路"], {"manager": "产业资本"}),
    (
        "scenario",
        "医院物流机器人配送场景",
        "门诊药房与手术室之间的物流机器人自主配送",
        ["机器人"],
        {"owner": "第一医院"},
    ),
]


def _make(client: TestClient, headers, path: str, body: dict) -> int:
    r = client.post(path, json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture
def park(engine_client: TestClient, headers):
    """Four enterprises and four resources that pair up one to one by topic, and an event with all of them."""
    h = headers["admin"]
    ents = [
        _make(
            engine_client,
            h,
            "/v1/enterprises",
            {"name": n, "description": d, "industries": i, "email": f"e{k}@example.com"},
        )
        for k, (n, d, i) in enumerate(ENTERPRISES)
    ]
    res = [
        _make(
            engine_client,
            h,
            "/v1/resources",
            {"kind": kind, "title": t, "description": d, "industries": i, "details": det},
        )
        for kind, t, d, i, det in RESOURCES
    ]
    ev = _make(
        engine_client,
        h,
        "/v1/events",
        {
            "title": "储能与医疗对接会",
            "date": "2031-05-20",
            "slots": SLOTS,
            "tables": 2,
            "max_meetings_per_participant": 2,
        },
    )
    dem = [_make(engine_client, h, f"/v1/events/{ev}/participants", {"enterprise_id": e}) for e in ents]
    sup = [_make(engine_client, h, f"/v1/events/{ev}/participants", {"resource_id": r}) for r in res]
    return {"event": ev, "enterprises": ents, "resources": res, "demand": dem, "supply": sup}


def test_the_plan_pairs_each_enterprise_with_the_resource_of_its_topic(engine_client, headers, park):
    r = engine_client.post(f"/v1/events/{park['event']}/schedule", headers=headers["admin"])
    assert r.status_code == 200, r.text
    body = r.json()
    meetings = body["meetings"]
    assert meetings and body["objective"] <= body["bound"] + 1e-9
    assert body["gap"] <= 0.02
    # the rules of a plan
    slots = Counter(m["slot"] for m in meetings)
    assert max(slots.values()) <= 2
    for side in ("enterprise_id", "resource_id"):
        per = Counter((m[side], m["slot"]) for m in meetings)
        assert max(per.values()) == 1
        assert max(Counter(m[side] for m in meetings).values()) <= 2
    # scores come from the pipeline: the best pair of each enterprise is the resource of its own topic
    best = {}
    for m in meetings:
        if m["score"] > best.get(m["enterprise_id"], (0, None))[0]:
            best[m["enterprise_id"]] = (m["score"], m["resource_id"])
    assert {e: rid for e, (_, rid) in best.items()} == dict(
        zip(park["enterprises"], park["resources"], strict=True)
    )
    top = max(meetings, key=lambda m: m["score"])
    assert top["explanation"]["summary"] and top["explanation"]["via"]["type"] == "enterprise"
    assert top["explanation"]["components"]["ranker"]
    assert top["start"] == SLOTS[top["slot"]]["start"] and 1 <= top["table"] <= 2
    # the stored plan reads back the same
    again = engine_client.get(f"/v1/events/{park['event']}/schedule", headers=headers["admin"]).json()
    assert [m["id"] for m in again["meetings"]] == [m["id"] for m in meetings] and not again["stale"]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the plan itself runs on both stores above
def test_avoid_and_want_are_honoured(engine_client, headers, park):
    h = headers["admin"]
    ev, d, s = park["event"], park["demand"], park["supply"]
    # enterprise 0 avoids its own topic's resource and wants the chip fund
    r = engine_client.patch(
        f"/v1/events/{ev}/participants/{d[0]}", json={"avoid": [s[0]], "want": [s[2]]}, headers=h
    )
    assert r.status_code == 200, r.text
    plan = engine_client.post(f"/v1/events/{ev}/schedule", headers=h).json()
    pairs = {(m["demand_participant_id"], m["supply_participant_id"]): m for m in plan["meetings"]}
    assert (d[0], s[0]) not in pairs
    assert pairs[(d[0], s[2])]["wanted"] is True


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the plan itself runs on both stores above
def test_who_cannot_be_seated_is_left_out_with_a_reason(engine_client, headers, park):
    h = headers["admin"]
    ev = _make(
        engine_client,
        h,
        "/v1/events",
        {
            "title": "小型路演",
            "date": "2031-05-21",
            "slots": SLOTS[:1],
            "tables": 1,
            "max_meetings_per_participant": 1,
        },
    )
    for e in park["enterprises"]:
        _make(engine_client, h, f"/v1/events/{ev}/participants", {"enterprise_id": e})
    _make(engine_client, h, f"/v1/events/{ev}/participants", {"resource_id": park["resources"][1]})
    plan = engine_client.post(f"/v1/events/{ev}/schedule", headers=h).json()
    assert len(plan["meetings"]) == 1
    met = plan["meetings"][0]["enterprise_id"]
    assert met == park["enterprises"][1]  # the imaging enterprise fits the imaging scenario best
    reasons = {x["enterprise_id"]: x["reason"] for x in plan["left_out"]}
    assert set(reasons) == set(park["enterprises"]) - {met}
    assert set(reasons.values()) <= {"event_full", "no_fit"}
    assert all(x["zh"] and x["en"] for x in plan["left_out"])
    # a side with nobody on it, and a record deleted since it joined: left out, saying so
    lone = _make(
        engine_client, h, "/v1/events", {"title": "单边", "date": "2031-05-21", "slots": SLOTS, "tables": 2}
    )
    pid = _make(
        engine_client, h, f"/v1/events/{lone}/participants", {"enterprise_id": park["enterprises"][0]}
    )
    gone = _make(engine_client, h, f"/v1/events/{lone}/participants", {"resource_id": park["resources"][3]})
    assert engine_client.delete(f"/v1/resources/{park['resources'][3]}", headers=h).status_code == 204
    plan = engine_client.post(f"/v1/events/{lone}/schedule", headers=h).json()
    assert plan["meetings"] == [] and plan["objective"] == 0 and plan["gap"] == 0
    assert {x["participant_id"]: x["reason"] for x in plan["left_out"]} == {
        pid: "no_counterpart",
        gone: "record_removed",
    }


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the plan itself runs on both stores above
def test_a_coverage_bonus_seats_more_participants(engine_client, headers, park):
    h = headers["admin"]
    ev = _make(
        engine_client,
        h,
        "/v1/events",
        {
            "title": "路演",
            "date": "2031-05-22",
            "slots": SLOTS[:2],
            "tables": 2,
            "max_meetings_per_participant": 2,
        },
    )
    d = [
        _make(engine_client, h, f"/v1/events/{ev}/participants", {"enterprise_id": e})
        for e in park["enterprises"][:2]
    ]
    for r in park["resources"][:2]:
        _make(engine_client, h, f"/v1/events/{ev}/participants", {"resource_id": r})
    plain = engine_client.post(f"/v1/events/{ev}/schedule", headers=h).json()
    covering = engine_client.post(f"/v1/events/{ev}/schedule", json={"coverage_bonus": 1}, headers=h).json()
    assert covering["stats"]["participants_met"] >= plain["stats"]["participants_met"]
    assert covering["stats"]["coverage_bonus"] == 1 and covering["gap"] <= 0.02
    assert {m["demand_participant_id"] for m in covering["meetings"]} == set(d)


def test_agendas_as_xlsx_and_email_and_outcomes_as_feedback(engine_client, headers, park, smtp):
    from matcher.digests.send import SmtpSender

    inbox, port = smtp
    engine_client.app.state.app_state.email_sender = SmtpSender("127.0.0.1", port)
    h = headers["admin"]
    ev = park["event"]
    plan = engine_client.post(f"/v1/events/{ev}/schedule", headers=h | {"Idempotency-Key": "plan-1"}).json()
    retry = engine_client.post(f"/v1/events/{ev}/schedule", headers=h | {"Idempotency-Key": "plan-1"}).json()
    assert retry["id"] == plan["id"]
    a = engine_client.get(f"/v1/events/{ev}/participants/{park['demand'][0]}/agenda", headers=h).json()
    assert a["items"] and "桌号 Table" in a["text"] and "Your 1:1 meetings" in a["text"]
    x = engine_client.get(f"/v1/events/{ev}/participants/{park['demand'][0]}/agenda.xlsx", headers=h)
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(x.content)).active
    assert sheet.cell(1, 1).value == "时段 Slot" and sheet.max_row == 1 + len(a["items"])
    whole = load_workbook(io.BytesIO(engine_client.get(f"/v1/events/{ev}/schedule.xlsx", headers=h).content))
    assert whole["洽谈 Meetings"].max_row == 1 + len(plan["meetings"])
    sent = engine_client.post(
        f"/v1/events/{ev}/agendas:send", headers=h | {"Idempotency-Key": "mail-1"}
    ).json()
    again = engine_client.post(f"/v1/events/{ev}/agendas:send", headers=h | {"Idempotency-Key": "mail-1"})
    assert again.json() == sent and again.headers.get("Idempotent-Replayed") == "true"  # nothing sent twice
    assert sent["sent"] == 4 and {s["reason"] for s in sent["skipped"]} == {"no_email"}  # resources have none
    assert len(inbox.messages) == 4 and "一对一洽谈日程" in inbox.messages[0]["Subject"]
    m = plan["meetings"][0]
    r = engine_client.post(
        f"/v1/events/{ev}/meetings/{m['id']}/outcome", json={"outcome": "deal", "amount": 5e6}, headers=h
    )
    assert r.status_code == 200 and r.json()["outcome"] == "deal"
    # the outcome is feedback on the match the meeting served: rankers learn from it
    from sqlmodel import Session, select

    from matcher.domain.tables import Feedback

    with Session(engine_client.app.state.app_state.db) as s:
        fb = s.exec(select(Feedback).where(Feedback.request_id == m["request_id"])).one()
    assert (fb.action, fb.amount, fb.resource_id, fb.enterprise_id) == (
        "deal",
        5e6,
        m["resource_id"],
        m["enterprise_id"],
    )
    bad = engine_client.post(
        f"/v1/events/{ev}/meetings/{m['id']}/outcome", json={"outcome": "met", "amount": 1}, headers=h
    )
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slots": [{"start": "09:20", "end": "09:00"}]}, "slots.0.end"),
        ({"slots": [{"start": "09:00", "end": "09:30"}, {"start": "09:20", "end": "09:40"}]}, "slots.1"),
        ({"slots": [{"start": "10:00", "end": "10:20"}, {"start": "09:00", "end": "09:20"}]}, "slots.1"),
        ({"tables": 0}, "tables"),
        ({"slots": []}, "slots"),
        ({"slots": [{"start": "25:00", "end": "26:00"}]}, "slots.0.start"),
    ],
)
def test_bad_events_are_refused(client, headers, change, field):
    body = {
        "title": "x",
        "date": "2031-01-01",
        "slots": SLOTS,
        "tables": 2,
        "max_meetings_per_participant": 2,
    } | change
    r = client.post("/v1/events", json=body, headers=headers["admin"])
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert r.json()["errors"][0]["field"] == field


def test_participants_must_be_the_parks_own_and_unique(client, headers, payloads):
    h, other = headers["admin"], headers["other"]
    ev = _make(client, h, "/v1/events", {"title": "x", "date": "2031-01-01", "slots": SLOTS, "tables": 2})
    theirs = _make(client, other, "/v1/enterprises", payloads.enterprise())
    hidden = _make(client, other, "/v1/resources", payloads.resource(visibility="private"))
    r = client.post(f"/v1/events/{ev}/participants", json={"enterprise_id": theirs}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "other_tenant"
    r = client.post(f"/v1/events/{ev}/participants", json={"resource_id": hidden}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["type"] == "not_found"
    mine = _make(client, h, "/v1/enterprises", payloads.enterprise())
    first = _make(client, h, f"/v1/events/{ev}/participants", {"enterprise_id": mine})
    assert (
        client.post(f"/v1/events/{ev}/participants", json={"enterprise_id": mine}, headers=h).status_code
        == 409
    )
    both = client.post(
        f"/v1/events/{ev}/participants", json={"enterprise_id": mine, "resource_id": 1}, headers=h
    )
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    other_ent = _make(client, h, "/v1/enterprises", payloads.enterprise(name="另一家"))
    same_side = client.post(
        f"/v1/events/{ev}/participants", json={"enterprise_id": other_ent, "avoid": [first]}, headers=h
    )
    assert same_side.status_code == 422 and same_side.json()["errors"][0]["type"] == "same_side"
    # another tenant neither sees nor changes the event; a platform key may not run events
    assert client.get(f"/v1/events/{ev}", headers=other).status_code == 404
    assert (
        client.post(
            f"/v1/events/{ev}/participants", json={"enterprise_id": theirs}, headers=other
        ).status_code
        == 404
    )
    assert client.get("/v1/events", headers=headers["platform"]).status_code == 403
    assert client.get(f"/v1/events/{ev}/schedule", headers=h).status_code == 404


def test_event_creation_is_idempotent_and_audited(client, headers):
    h = headers["admin"] | {"Idempotency-Key": "evt-1"}
    body = {"title": "路演", "date": "2031-01-01", "slots": SLOTS, "tables": 3}
    a, b = client.post("/v1/events", json=body, headers=h), client.post("/v1/events", json=body, headers=h)
    assert a.status_code == b.status_code == 201 and a.json()["id"] == b.json()["id"]
    assert a.json()["max_meetings_per_participant"] == 3
    assert len(client.get("/v1/events", headers=headers["admin"]).json()["data"]) == 1
    trail = client.get("/v1/audit", params={"record_type": "event"}, headers=headers["admin"]).json()
    assert [e["action"] for e in trail["data"]] == ["create"]
    assert client.delete(f"/v1/events/{a.json()['id']}", headers=headers["admin"]).status_code == 204
    assert client.get(f"/v1/events/{a.json()['id']}", headers=headers["admin"]).status_code == 404
