"""The cultivation pipeline in the workbench: the funnel by tier and by a chain's links as SVG charts, the
enterprises of a tier, a move with its reason in the history (who, when, why), tier policies with the API's
validation, relay incubation (a graduate and the shared chains' links it fits), CSRF, another tenant's
enterprise, and a role the matrix does not let write."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session, select

from matcher.domain.park_tables import TierPolicy, TierTransition
from matcher.domain.permissions import MATRIX, Grant
from tests.api.test_relay import LINKS


def _ent(client, h, name: str, **over) -> int:
    r = client.post("/v1/enterprises", json={"name": name, **over}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_the_funnel_a_tiers_list_a_move_with_its_reason_and_policies(client, signed, headers, engine):
    h = headers["admin"]
    a = _ent(client, h, "芯驰车规芯片", tier="prospect")
    _ent(client, h, "域控计算", tier="key_account")
    chain = client.post("/v1/chains", json={"name_zh": "智能网联汽车", "links": LINKS}, headers=h).json()
    csrf = signed(client, "officer")
    page = client.get("/ui/cultivation")
    assert page.status_code == 200 and page.text.count('role="img"') == 1 and "芯驰车规芯片" in page.text
    assert "摸底" in page.text and "精准服务" in page.text
    by_chain = client.get(f"/ui/cultivation?chain_id={chain['id']}&tier=key_account")
    assert (
        by_chain.text.count('role="img"') == 2 and "出行服务" in by_chain.text and "域控计算" in by_chain.text
    )
    moved = client.post(
        f"/ui/cultivation/enterprises/{a}/tier",
        data={"csrf": csrf, "tier": "incubating", "reason": "完成摸底走访"},
    )
    assert moved.status_code == 200 and "已保存" in moved.text
    assert re.search(r'id="current-tier">入库培育<', moved.text)
    history = moved.text.split("梯队变动记录", 1)[1]
    assert "完成摸底走访" in history and "officer" in history  # who: the person, by name
    with Session(engine) as s:
        t = s.exec(select(TierTransition).where(TierTransition.reason == "完成摸底走访")).one()
    assert (t.from_tier, t.to_tier, t.source) == ("prospect", "incubating", "api") and t.actor.startswith(
        "user:"
    )
    bad = client.post(
        f"/ui/cultivation/enterprises/{a}/tier", data={"csrf": csrf, "tier": "vip", "reason": "试试"}
    )
    assert bad.status_code == 422 and "输入有误" in bad.text and 'value="试试"' in bad.text
    # a tier's policy: the API's validation, then saved
    policy = {
        "csrf": csrf,
        "digest_frequency": "biweekly",
        "digest_kinds": ["fund"],
        "follow_up": "1",
        "apply_now": "1",
    }
    wrong = client.post("/ui/cultivation/policies/incubating", data={**policy, "follow_up_min_score": "2"})
    assert wrong.status_code == 422 and "follow_up_min_score" in wrong.text
    client.cookies.set("pm_lang", "en")
    wrong = client.post("/ui/cultivation/policies/incubating", data={**policy, "follow_up_days": "0"})
    assert (
        wrong.status_code == 422
        and "Please check your input" in wrong.text
        and "follow_up_days" in wrong.text
    )
    ok = client.post("/ui/cultivation/policies/incubating", data={**policy, "follow_up_days": "7"})
    assert ok.status_code == 200 and "saved" in ok.text.lower()
    with Session(engine) as s:
        p = s.exec(select(TierPolicy)).one()
    assert (p.tier, p.digest_frequency, p.digest_kinds, p.follow_up, p.follow_up_days) == (
        "incubating",
        "biweekly",
        ["fund"],
        True,
        7,
    )
    en = client.get(f"/ui/cultivation/enterprises/{a}")
    assert "Tier history" in en.text and "incubating" in en.text


def test_relay_incubation_marks_a_graduate_and_shows_the_links_it_fits(engine_client, signed, headers):
    client = engine_client
    client.post(
        "/v1/chains",
        json={"name_zh": "智能网联汽车", "name_en": "ICV", "links": LINKS, "shared": True, "min_score": 0.2},
        headers=headers["other"],
    )
    grad = _ent(client, headers["admin"], "光感激光雷达", description="车载激光雷达与环境感知传感器研发")
    csrf = signed(client, "officer")
    bad = client.post(
        f"/ui/cultivation/enterprises/{grad}/graduation", data={"csrf": csrf, "expected": "soon"}
    )
    assert bad.status_code == 422 and "expected" in bad.text
    marked = client.post(
        f"/ui/cultivation/enterprises/{grad}/graduation",
        data={"csrf": csrf, "expected": "2031-09-01", "note": "A轮后"},
    )
    assert marked.status_code == 200 and "已标记为即将毕业" in marked.text and "2031-09-01" in marked.text
    relay = marked.text.split('id="relay"', 1)[1]
    assert "智能网联汽车" in relay and "激光雷达" in relay and "tenant-b" in relay
    twice = client.post(f"/ui/cultivation/enterprises/{grad}/graduation", data={"csrf": csrf})
    assert twice.status_code == 409 and "已标记为毕业企业" in twice.text
    gone = client.post(f"/ui/cultivation/enterprises/{grad}/graduation/remove", data={"csrf": csrf})
    assert gone.status_code == 200 and "标记为即将毕业" in gone.text and "已标记为即将毕业" not in gone.text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_another_tenants_enterprise_csrf_and_a_role_that_may_not_write(
    client, signed, headers, monkeypatch, lang
):
    mine = _ent(client, headers["admin"], "芯驰车规芯片", tier="prospect")
    theirs = _ent(client, headers["other"], "远图高精地图", tier="prospect")  # public, yet its tier is B's
    csrf = signed(client, "officer")
    client.cookies.set("pm_lang", lang)
    page = client.get(f"/ui/cultivation/enterprises/{theirs}")
    assert page.status_code == 404 and "远图高精地图" not in page.text
    r = client.post(f"/ui/cultivation/enterprises/{theirs}/tier", data={"csrf": csrf, "tier": "key_account"})
    assert r.status_code == 404 and "远图高精地图" not in r.text
    assert (
        client.post(f"/ui/cultivation/enterprises/{mine}/tier", data={"tier": "key_account"}).status_code
        == 403
    )
    monkeypatch.setitem(MATRIX["cultivation"], "update", Grant("tenant", "none", "none"))
    monkeypatch.setitem(MATRIX["graduation"], "create", Grant("tenant", "none", "none"))
    read_only = client.get(f"/ui/cultivation/enterprises/{mine}")
    assert (
        read_only.status_code == 200 and "/tier" not in read_only.text and "/graduation" not in read_only.text
    )
    assert 'action="/ui/cultivation/policies/' not in client.get("/ui/cultivation").text
    refused = client.post(
        f"/ui/cultivation/enterprises/{mine}/tier", data={"csrf": csrf, "tier": "key_account"}
    )
    assert refused.status_code == 403
    refused = client.post("/ui/cultivation/policies/prospect", data={"csrf": csrf, "digest_frequency": "off"})
    assert refused.status_code == 403
    assert re.search(
        r'id="current-tier">(摸底|prospect)<', client.get(f"/ui/cultivation/enterprises/{mine}").text
    )
