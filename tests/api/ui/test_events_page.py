"""Docking events in the workbench: the create form refusing bad slots and tables in both languages (what was
typed kept), participants added and removed with the API's rules, the plan as a slots x tables grid with the
meetings the API returns, agendas as XLSX, outcomes that become feedback, CSRF and another tenant's event."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook
from sqlmodel import Session, select

from matcher.domain.park_tables import DockingEvent
from matcher.domain.tables import Feedback
from tests.api.test_events import ENTERPRISES, RESOURCES

EVENT = {
    "title": "储能与医疗对接会",
    "date": "2031-05-20",
    "location": "创新中心",
    "slots": "09:00-09:20\n09:20-09:40",
    "tables": "2",
    "max_meetings_per_participant": "2",
    "min_score": "0",
}


def _event(client, csrf: str, **over: str) -> int:
    r = client.post("/ui/events/new", data={"csrf": csrf, **EVENT, **over}, follow_redirects=False)
    assert r.status_code == 303, r.text[:2000]
    return int(re.search(r"/ui/events/(\d+)", r.headers["location"]).group(1))


def _events(engine) -> list[DockingEvent]:
    with Session(engine) as s:
        return list(s.exec(select(DockingEvent)))


@pytest.mark.parametrize(("lang", "heading"), [("zh", "输入有误"), ("en", "Please check your input")])
def test_the_form_refuses_bad_slots_and_tables_and_keeps_what_was_typed(
    client, signed, engine, lang, heading
):
    csrf = signed(client, "officer")
    client.cookies.set("pm_lang", lang)
    assert client.get("/ui/events").status_code == 200
    cases = {
        "09:20-09:00": ("slots", "时段结束时间须晚于开始时间"),  # ends before it starts
        "09:00-09:30\n09:20-09:40": ("slots", "overlaps"),
    }
    for slots, (box, words) in cases.items():
        r = client.post("/ui/events/new", data={"csrf": csrf, **EVENT, "slots": slots})
        assert r.status_code == 422 and heading in r.text and words in r.text, slots
        assert f'id="ev-{box}-err"' in r.text and slots.split("\n")[0] in r.text  # the box keeps its text
    zero = client.post("/ui/events/new", data={"csrf": csrf, **EVENT, "tables": "0"})
    assert (
        zero.status_code == 422
        and 'id="ev-tables-err"' in zero.text
        and 'value="储能与医疗对接会"' in zero.text
    )
    assert _events(engine) == []


def test_participants_the_plan_as_a_grid_agendas_and_outcomes(engine_client, signed, headers, engine):
    client, h = engine_client, headers["admin"]
    ents = [
        client.post("/v1/enterprises", json={"name": n, "description": d, "industries": i}, headers=h).json()[
            "id"
        ]
        for n, d, i in ENTERPRISES[:2]
    ]
    res = [
        client.post(
            "/v1/resources",
            json={"kind": k, "title": t, "description": d, "industries": i, "details": det},
            headers=h,
        ).json()["id"]
        for k, t, d, i, det in RESOURCES[:2]
    ]
    csrf = signed(client, "officer")
    ev = _event(client, csrf)
    for record in [f"E{e}" for e in ents] + [f"R{r}" for r in res]:
        r = client.post(f"/ui/events/{ev}/participants", data={"csrf": csrf, "record": record})
        assert r.status_code == 200 and "已保存" in r.text, r.text[:1000]
    parts = client.get(f"/v1/events/{ev}/participants", headers=h).json()["data"]
    demand = [p["id"] for p in parts if p["side"] == "demand"]
    # the API's rules, on the page: a participant twice (409), avoid on the same side (422)
    twice = client.post(f"/ui/events/{ev}/participants", data={"csrf": csrf, "record": f"E{ents[0]}"})
    assert twice.status_code == 409 and "already takes part" in twice.text
    extra = client.post(
        "/v1/enterprises", json={"name": "新能储运", "description": "储能"}, headers=h
    ).json()["id"]
    same = client.post(
        f"/ui/events/{ev}/participants", data={"csrf": csrf, "record": f"E{extra}", "avoid": [str(demand[0])]}
    )
    assert same.status_code == 422 and "same side" in same.text and f'value="E{extra}" selected' in same.text
    # the plan: the grid shows the meetings the API returns, each with its score and why
    planned = client.post(f"/ui/events/{ev}/schedule", data={"csrf": csrf})
    assert planned.status_code == 200 and "已生成洽谈安排" in planned.text
    plan = client.get(f"/v1/events/{ev}/schedule", headers=h).json()
    assert plan["meetings"]
    grid = planned.text.split('class="schedule-grid"', 1)[1].split("</table>", 1)[0]
    assert len(re.findall(r'id="m-\d+"', grid)) == len(plan["meetings"])
    for m in plan["meetings"]:
        cell = grid.split(f'id="m-{m["id"]}"', 1)[1].split("</td>", 1)[0]
        assert f"{m['score']:.0%}" in cell and m["explanation"]["summary"][:10] in cell
    rows = re.findall(r'<th scope="row">([^<]+)</th>', grid)
    assert rows == ["09:00–09:20", "09:20–09:40"] and grid.count('<th scope="col">第') == 2
    assert f"{plan['objective']:.4f}" in planned.text and "已证明最优" in planned.text
    # a participant's agenda: the API's file
    pid = plan["meetings"][0]["demand_participant_id"]
    mine = client.get(f"/ui/events/{ev}/participants/{pid}/agenda.xlsx")
    theirs = client.get(f"/v1/events/{ev}/participants/{pid}/agenda.xlsx", headers=h)
    assert mine.status_code == 200 and mine.headers["content-type"].startswith("application/vnd.openxml")
    sheet = lambda data: [list(r) for r in load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)]  # noqa: E731
    assert sheet(mine.content) == sheet(theirs.content)
    # outcomes: an amount only with a deal; a deal is feedback on the meeting's impression
    m = plan["meetings"][0]
    wrong = client.post(
        f"/ui/events/{ev}/meetings/{m['id']}/outcome", data={"csrf": csrf, "outcome": "met", "amount": "100"}
    )
    assert wrong.status_code == 422 and "amount" in wrong.text
    deal = client.post(
        f"/ui/events/{ev}/meetings/{m['id']}/outcome",
        data={"csrf": csrf, "outcome": "deal", "amount": "5,000,000"},
    )
    assert (
        deal.status_code == 200
        and "已成交" in deal.text.split(f'id="m-{m["id"]}"', 1)[1].split("</td>", 1)[0]
    )
    with Session(engine) as s:
        fb = s.exec(select(Feedback).where(Feedback.request_id == m["request_id"])).all()
    assert [(f.action, f.amount) for f in fb] == [("deal", 5_000_000)]
    # removing a participant
    gone = client.post(f"/ui/events/{ev}/participants/{pid}/remove", data={"csrf": csrf})
    assert gone.status_code == 200 and "参与方在生成此安排后有变动" in gone.text
    assert pid not in [p["id"] for p in client.get(f"/v1/events/{ev}/participants", headers=h).json()["data"]]


def test_another_tenants_event_and_a_form_without_its_token(client, signed, headers, engine):
    csrf = signed(client, "officer")
    ev = _event(client, csrf)
    no_token = client.post("/ui/events/new", data={**EVENT, "title": "无令牌"})
    assert no_token.status_code == 403 and [e.title for e in _events(engine)] == ["储能与医疗对接会"]
    ent = client.post("/v1/enterprises", json={"name": "储能甲"}, headers=headers["admin"]).json()["id"]
    r = client.post(f"/ui/events/{ev}/participants", data={"record": f"E{ent}"})
    assert (
        r.status_code == 403
        and client.get(f"/v1/events/{ev}/participants", headers=headers["admin"]).json()["count"] == 0
    )
    other = signed(client, "other")
    for url in (f"/ui/events/{ev}", f"/ui/events/{ev}/schedule.xlsx"):
        page = client.get(url)
        assert page.status_code == 404 and "储能与医疗对接会" not in page.text and "未找到该记录" in page.text
    r = client.post(f"/ui/events/{ev}/participants", data={"csrf": other, "record": f"E{ent}"})
    assert r.status_code == 404 and "储能与医疗对接会" not in r.text
    assert "储能与医疗对接会" not in client.get("/ui/events").text
