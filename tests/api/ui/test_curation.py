"""Curation from the cards: feedback as the API records it, pins and blocks that change the enterprise's matches
(API and digests alike), notes; another tenant's enterprise reads as not found."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from matcher.domain.tables import Curation, Feedback
from tests.api.ui.conftest import search, titles


def _rid(html: str) -> str:
    return re.search(r'name="request_id" value="([0-9a-f]+)"', html).group(1)


def _id_of(html: str, title: str) -> int:
    found = re.findall(r'<h3 id="title-(\d+)"><a [^>]*>(.*?)</a></h3>', html)
    return next(int(i) for i, t in found if re.sub(r"<[^>]+>", "", t) == title)


def test_feedback_from_a_card_is_the_api_feedback(engine_client, signed, park, engine):
    csrf = signed(engine_client, "officer")
    html = search(engine_client, csrf, q="医院 人工智能 影像诊断").text
    rid, first = _rid(html), _id_of(html, "三甲医院AI辅助影像诊断应用场景")
    r = engine_client.post(
        "/ui/feedback",
        data={
            "csrf": csrf,
            "request_id": rid,
            "resource_id": first,
            "action": "rejected",
            "reason": "too_early",
        },
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and "已记录：不相关（技术成熟度不足）" in r.text
    ok = engine_client.post(
        "/ui/feedback",
        data={"csrf": csrf, "request_id": rid, "resource_id": first, "action": "deal", "amount": "500000"},
    )
    assert ok.status_code == 200 and "已成交" in ok.text
    with Session(engine) as s:
        rows = list(s.exec(select(Feedback).order_by(Feedback.id)))
    assert [(f.action, f.reason, f.amount, f.request_id) for f in rows] == [
        ("rejected", "too_early", None, rid),
        ("deal", None, 500000.0, rid),
    ]
    never = engine_client.post(
        "/ui/feedback",
        data={"csrf": csrf, "request_id": "0" * 32, "resource_id": first, "action": "accepted"},
        headers={"HX-Request": "true"},
    )
    assert never.status_code == 422 and "never shown" in never.text
    forged = engine_client.post(
        "/ui/feedback", data={"request_id": rid, "resource_id": first, "action": "accepted"}
    )
    assert forged.status_code == 403


def test_pins_come_first_and_blocks_disappear_in_api_matches(engine_client, signed, park, headers, engine):
    csrf = signed(engine_client, "officer")
    ent = park["enterprise"]
    html = search(engine_client, csrf, subject=f"E{ent}", k="20").text
    listed = titles(html)
    assert len(listed) >= 3
    top, last = _id_of(html, listed[0]), _id_of(html, listed[-1])
    block = engine_client.post(
        "/ui/curation",
        data={
            "csrf": csrf,
            "enterprise_id": ent,
            "resource_id": top,
            "state": "block",
            "request_id": _rid(html),
        },
        headers={"HX-Request": "true"},
    )
    assert block.status_code == 200 and "取消屏蔽" in block.text
    pin = engine_client.post(
        "/ui/curation",
        data={"csrf": csrf, "enterprise_id": ent, "resource_id": last, "state": "pin"},
        headers={"HX-Request": "true"},
    )
    assert "取消置顶" in pin.text
    note = engine_client.post(
        "/ui/curation",
        data={
            "csrf": csrf,
            "enterprise_id": ent,
            "resource_id": last,
            "note": "<script>x</script>已联系张工",
        },
        headers={"HX-Request": "true"},
    )
    assert "&lt;script&gt;" in note.text and "<script>x" not in note.text
    api = engine_client.get(f"/v1/enterprises/{ent}/matches?k=20", headers=headers["officer"]).json()
    ids = [m["resource"]["id"] for m in api["matches"]]
    assert ids[0] == last and top not in ids
    again = search(engine_client, csrf, subject=f"E{ent}", k="20").text
    assert _id_of(again, listed[-1]) == last and "📌" in again and listed[0] not in titles(again)
    with Session(engine) as s:
        fb = s.exec(select(Feedback)).one()  # blocking from a served list is a 'not relevant'
        assert (fb.action, fb.resource_id) == ("rejected", top)
        rows = {c.resource_id: c for c in s.exec(select(Curation))}
    assert rows[last].state == "pin" and rows[last].note == "<script>x</script>已联系张工"
    clear = engine_client.post(
        "/ui/curation",
        data={"csrf": csrf, "enterprise_id": ent, "resource_id": top, "state": "none"},
        headers={"HX-Request": "true"},
    )
    assert clear.status_code == 200
    api = engine_client.get(f"/v1/enterprises/{ent}/matches?k=20", headers=headers["officer"]).json()
    assert top in [m["resource"]["id"] for m in api["matches"]]


def test_another_tenants_enterprise_is_not_found(engine_client, signed, park):
    csrf = signed(engine_client, "other")
    r = engine_client.post(
        "/ui/curation",
        data={
            "csrf": csrf,
            "enterprise_id": park["enterprise"],
            "resource_id": park["硬科技早期基金"],
            "state": "pin",
        },
    )
    assert r.status_code == 404 and "未找到" in r.text and "智影" not in r.text
