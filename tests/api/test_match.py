"""Matching over HTTP with the real engine: ranking, hard filters, explanations, both directions, bad input."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer

PROBLEM = "application/problem+json"

CATALOG = [
    dict(
        kind="scenario",
        title="三甲医院AI辅助影像诊断应用场景",
        description="放射科胸部CT肺结节筛查，寻求可部署于院内私有云的人工智能辅助诊断系统，与PACS对接。",
        industries=["数字医疗", "人工智能"],
        region="海淀园",
        details={
            "owner": "京华医院",
            "budget": 3_000_000,
            "deadline": (date.today() + timedelta(days=40)).isoformat(),
        },
    ),
    dict(
        kind="scenario",
        title="已截止：地铁站客流智能监测场景",
        description="地铁站客流监测与视频分析，人工智能算法。",
        industries=["人工智能"],
        details={"owner": "城市轨道公司", "deadline": (date.today() - timedelta(days=3)).isoformat()},
    ),
    dict(
        kind="fund",
        title="硬科技早期基金",
        description="投资集成电路、人工智能、量子信息等硬科技早期项目。",
        industries=["集成电路", "人工智能"],
        details={
            "manager": "中关村资本",
            "stages": ["seed", "startup"],
            "ticket_min": 1e6,
            "ticket_max": 2e7,
        },
    ),
    dict(
        kind="fund",
        title="成长期产业基金",
        description="投资集成电路与智能装备成长期企业，单笔投资规模较大。",
        industries=["集成电路"],
        details={"manager": "产业资本", "stages": ["growth"], "ticket_min": 5e7, "ticket_max": 3e8},
    ),
    dict(
        kind="result",
        title="锂电池正极材料低成本制备技术",
        description="一种磷酸铁锂正极材料的低成本制备方法，循环寿命高，适用于储能电池。",
        industries=["储能", "新材料"],
        details={"holder": "某材料研究所", "trl": 7, "transfer_modes": ["许可"]},
    ),
    dict(
        kind="result",
        title="量子精密测量磁力计",
        description="基于原子自旋的量子磁力计，用于医学脑磁成像与地质勘探。",
        industries=["量子信息"],
        details={"holder": "某大学", "trl": 3},
    ),
    dict(
        kind="incubator",
        title="生物医药概念验证中心",
        description="提供动物房、洁净室和中试线，服务基因编辑与创新药早期项目。",
        industries=["医药健康", "基因编辑"],
        details={"operator": "园区运营公司", "facilities": ["动物房", "洁净室", "中试线"], "capacity": 30},
    ),
]


@pytest.fixture
def loaded(engine_client: TestClient, headers) -> dict[str, int]:
    ids = {}
    for body in CATALOG:
        r = engine_client.post("/v1/resources", json=body, headers=headers["admin"])
        assert r.status_code == 201, r.text
        ids[body["title"]] = r.json()["id"]
    return ids


def _match(client: TestClient, headers, **body):
    return client.post("/v1/match", json=body, headers=headers)


def test_free_text_finds_the_right_resource_with_explanation(engine_client, headers, loaded):
    r = _match(engine_client, headers["admin"], text="医院CT影像人工智能辅助诊断", k=3)
    assert r.status_code == 200, r.text
    body = r.json()
    top = body["matches"][0]
    assert top["resource"]["id"] == loaded["三甲医院AI辅助影像诊断应用场景"]
    assert 0.0 <= top["score"] <= 1.0
    assert [m["score"] for m in body["matches"]] == sorted(
        (m["score"] for m in body["matches"]), reverse=True
    )
    ex = top["explanation"]
    assert "影像" in ex["matched_terms"] or "诊断" in ex["matched_terms"]
    span = ex["highlights"]["title"][0]
    assert top["resource"]["title"][span["start"] : span["end"]] == span["text"]
    assert {c["name"] for c in ex["constraints"]} >= {"status", "open_until", "visibility"}
    assert ex["components"]["score"] == pytest.approx(top["score"], abs=1e-3)
    assert ex["summary"]


def test_expired_scenario_is_filtered_and_kinds_restrict(engine_client, headers, loaded):
    r = _match(engine_client, headers["admin"], text="地铁站客流智能监测 视频分析", kinds=["scenario"], k=10)
    ids = [m["resource"]["id"] for m in r.json()["matches"]]
    assert loaded["已截止：地铁站客流智能监测场景"] not in ids
    assert all(m["resource"]["kind"] == "scenario" for m in r.json()["matches"])


def test_fund_ticket_and_stage_are_hard_filters(engine_client, headers, loaded):
    r = _match(
        engine_client,
        headers["admin"],
        text="集成电路企业融资",
        kinds=["fund"],
        filters={"amount": 1e8, "stage": "growth"},
        k=10,
        min_score=0,
    )
    ids = [m["resource"]["id"] for m in r.json()["matches"]]
    assert ids == [loaded["成长期产业基金"]]
    ticket = [c for c in r.json()["matches"][0]["explanation"]["constraints"] if c["name"] == "ticket"][0]
    assert ticket["status"] == "met"


def test_k_results_come_back_when_k_qualify(engine_client, headers, loaded):
    r = _match(engine_client, headers["admin"], text="量子", kinds=["result"], k=2, min_score=0)
    assert r.json()["count"] == 2


def test_min_score_gives_an_honest_empty_answer(engine_client, headers, loaded):
    r = _match(engine_client, headers["admin"], text="完全无关的烹饪菜谱红烧肉", min_score=0.99)
    assert r.status_code == 200
    assert r.json()["matches"] == [] and r.json()["message"]


def test_cross_lingual_through_the_taxonomy(engine_client, headers, loaded):
    r = _match(engine_client, headers["admin"], text="quantum information sensing", k=3, min_score=0)
    titles = [m["resource"]["title"] for m in r.json()["matches"]]
    assert "量子精密测量磁力计" in titles


def test_private_resource_of_another_tenant_is_never_matched(engine_client, headers, loaded):
    body = dict(CATALOG[4], title="私有锂电池技术", visibility="private")
    r = engine_client.post("/v1/resources", json=body, headers=headers["other"])
    private_id = r.json()["id"]
    r = _match(engine_client, headers["admin"], text="锂电池正极材料", k=10, min_score=0)
    assert private_id not in [m["resource"]["id"] for m in r.json()["matches"]]
    r = _match(engine_client, headers["other"], text="锂电池正极材料", k=10, min_score=0)
    assert private_id in [m["resource"]["id"] for m in r.json()["matches"]]


def test_writes_update_the_indexes_incrementally(engine_client, headers, loaded):
    rid = loaded["锂电池正极材料低成本制备技术"]
    r = engine_client.patch(
        f"/v1/resources/{rid}",
        json={"title": "钠离子电池负极材料", "description": "硬碳负极，钠离子电池"},
        headers=headers["admin"],
    )
    assert r.status_code == 200
    top = _match(engine_client, headers["admin"], text="钠离子电池硬碳负极", k=1, min_score=0).json()[
        "matches"
    ]
    assert top[0]["resource"]["id"] == rid
    assert engine_client.delete(f"/v1/resources/{rid}", headers=headers["admin"]).status_code == 204
    ids = [
        m["resource"]["id"]
        for m in _match(engine_client, headers["admin"], text="钠离子电池硬碳负极", k=10, min_score=0).json()[
            "matches"
        ]
    ]
    assert rid not in ids


def test_need_and_enterprise_matches_and_reverse(engine_client, headers, loaded):
    ent = engine_client.post(
        "/v1/enterprises",
        json={
            "name": "智影医疗科技",
            "description": "医学影像人工智能辅助诊断软件",
            "industries": ["数字医疗"],
            "stage": "startup",
            "email": "ceo@example.cn",
        },
        headers=headers["admin"],
    ).json()
    need = engine_client.post(
        "/v1/needs",
        json={
            "enterprise_id": ent["id"],
            "title": "寻找医院影像诊断落地场景",
            "description": "CT影像AI辅助诊断需要临床验证场景",
            "kinds": ["scenario"],
            "industries": ["数字医疗"],
        },
        headers=headers["admin"],
    ).json()
    r = engine_client.get(f"/v1/needs/{need['id']}/matches?k=3", headers=headers["admin"])
    assert r.status_code == 200
    assert r.json()["matches"][0]["resource"]["id"] == loaded["三甲医院AI辅助影像诊断应用场景"]
    assert all(m["resource"]["kind"] == "scenario" for m in r.json()["matches"])
    r = engine_client.get(f"/v1/enterprises/{ent['id']}/matches?k=5", headers=headers["admin"])
    assert r.status_code == 200 and r.json()["count"] >= 1
    # reverse: the scenario's owner platform (another tenant) sees the need, but not the enterprise's email
    sid = loaded["三甲医院AI辅助影像诊断应用场景"]
    r = engine_client.get(f"/v1/resources/{sid}/matches?k=5&min_score=0", headers=headers["other"])
    assert r.status_code == 200, r.text
    found = [m for m in r.json()["matches"] if m["type"] == "need" and m["need"]["id"] == need["id"]]
    assert found and found[0]["enterprise"]["email"] is None
    assert "ceo@example.cn" not in r.text


@pytest.mark.parametrize(
    "body",
    [
        {"text": ""},
        {"text": "芯片" * 10_000},
        {"text": "芯片", "k": 0},
        {"text": "芯片", "k": 10_000},
        {"text": "芯片", "filters": {"colour": "red"}},
        {"text": "芯片", "kinds": ["spaceship"]},
        {"text": "芯片", "filters": {"industries": False}},
        {"text": "芯片", "filters": {"industries": [1, 2]}},
        {"need_id": 2**64},
        {},
    ],
)
def test_bad_match_requests_get_422(engine_client, headers, body):
    r = engine_client.post("/v1/match", json=body, headers=headers["admin"])
    assert r.status_code == 422
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["detail"]


def test_need_of_another_tenant_is_404(engine_client, headers):
    ent = engine_client.post("/v1/enterprises", json={"name": "私有企业"}, headers=headers["other"]).json()
    need = engine_client.post(
        "/v1/needs",
        json={"enterprise_id": ent["id"], "title": "私有需求", "visibility": "private"},
        headers=headers["other"],
    ).json()
    r = engine_client.post("/v1/match", json={"need_id": need["id"]}, headers=headers["admin"])
    assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM)
    assert "私有需求" not in r.text
    assert engine_client.get(f"/v1/needs/{need['id']}/matches", headers=headers["admin"]).status_code == 404


def test_search_for_officers(engine_client, headers, loaded):
    r = engine_client.get(
        "/v1/search", params={"q": "洁净室 动物房", "industries": "医药健康"}, headers=headers["officer"]
    )
    assert r.status_code == 200
    assert r.json()["matches"][0]["resource"]["title"] == "生物医药概念验证中心"


def test_match_needs_a_key(engine_client):
    r = engine_client.post("/v1/match", json={"text": "芯片"}, headers=bearer("pm_nope_nope"))
    assert r.status_code == 401


def _private_enterprise_with_public_need(client: TestClient, headers) -> tuple[dict, dict]:
    """Tenant B's private enterprise and a public need of it that fits the hospital scenario."""
    ent = client.post(
        "/v1/enterprises",
        json={
            "name": "隐秘影像科技",
            "description": "秘密研发中的影像诊断算法",
            "industries": ["数字医疗"],
            "stage": "mature",
            "tier": "key_account",
            "visibility": "private",
        },
        headers=headers["other"],
    )
    assert ent.status_code == 201, ent.text
    need = client.post(
        "/v1/needs",
        json={
            "enterprise_id": ent.json()["id"],
            "title": "寻找医院影像诊断落地场景",
            "description": "CT影像AI辅助诊断需要临床验证场景",
            "kinds": ["scenario"],
            "visibility": "public",
        },
        headers=headers["other"],
    )
    assert need.status_code == 201, need.text
    return ent.json(), need.json()


def test_reverse_match_hides_the_private_enterprise_of_a_public_need(engine_client, headers, loaded):
    ent, need = _private_enterprise_with_public_need(engine_client, headers)
    assert engine_client.get(f"/v1/enterprises/{ent['id']}", headers=headers["admin"]).status_code == 404
    sid = loaded["三甲医院AI辅助影像诊断应用场景"]
    url = f"/v1/resources/{sid}/matches?k=10&min_score=0"
    r = engine_client.get(url, headers=headers["admin"])
    assert r.status_code == 200, r.text
    found = [m for m in r.json()["matches"] if m["type"] == "need" and m["need"]["id"] == need["id"]]
    assert found, "the public need itself is visible"
    assert found[0]["enterprise"] is None
    assert found[0]["need"]["enterprise_id"] is None
    assert ent["id"] not in [m["enterprise"]["id"] for m in r.json()["matches"] if m["enterprise"]]
    for secret in ("隐秘影像科技", "秘密研发中的影像诊断算法", "key_account", "mature"):
        assert secret not in r.text
    # its own tenant still sees the pair
    own = engine_client.get(url, headers=headers["other"]).json()["matches"]
    mine = [m for m in own if m["type"] == "need" and m["need"]["id"] == need["id"]]
    assert mine[0]["enterprise"]["name"] == "隐秘影像科技"
    assert mine[0]["need"]["enterprise_id"] == ent["id"]


def test_a_public_need_never_names_its_private_enterprise(engine_client, headers, loaded):
    ent, need = _private_enterprise_with_public_need(engine_client, headers)
    one = engine_client.get(f"/v1/needs/{need['id']}", headers=headers["admin"])
    assert one.status_code == 200 and one.json()["enterprise_id"] is None
    listed = engine_client.get("/v1/needs", headers=headers["admin"]).json()["data"]
    assert [n["enterprise_id"] for n in listed if n["id"] == need["id"]] == [None]
    assert (
        engine_client.get(f"/v1/needs/{need['id']}", headers=headers["other"]).json()["enterprise_id"]
        == (ent["id"])
    )
    # matching the need uses only what the caller may see: not the private enterprise's stage
    r = engine_client.get(f"/v1/needs/{need['id']}/matches?k=10&min_score=0", headers=headers["admin"])
    assert r.status_code == 200, r.text
    assert "mature" not in r.text and "隐秘影像科技" not in r.text
