"""The reverse direction over HTTP: a newly posted elderly-care scenario finds the enterprises and needs that fit
it rather than those that share its filler words, across languages and regions, explained in the language of
the request."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.conftest import bearer

CJK = re.compile(r"[\u4e00-\u9fff]")
SCENARIO = {
    "kind": "scenario",
    "title": "社区养老院跌倒检测与夜间看护场景",
    "description": "面向社区养老院的失能与半失能老人，试点夜间离床、跌倒检测与异常呼叫报警。要求非接触、不使用摄像头，"
    "设备可部署于院内，告警接入护理站值班系统。",
    "industries": ["智慧养老", "物联网"],
    "region": "海淀区",
    "details": {"owner": "京西社区养老服务中心", "budget": 600000},
}
ENTERPRISES = {
    "fall": {
        "name": "安颐智护科技有限公司",
        "description": "研发毫米波雷达跌倒检测与离床监测终端，无需摄像头，已在多家养老机构安装使用。",
        "industries": ["智慧养老", "物联网"],
        "region": "海淀园",
    },
    "english": {
        "name": "CareWave Labs",
        "description": "Radar-based fall detection and night-time alerts for care homes; no cameras.",
        "industries": ["elderly care"],
        "region": "Haidian",
        "language": "en",
    },
    "llm": {
        "name": "云枢大模型科技有限公司",
        "description": "研发面向政务的行业大模型平台，支持私有化部署。",
        "industries": ["人工智能"],
        "region": "北京",
    },
}
NEEDS = {
    "fall": (
        "fall",
        "养老机构跌倒检测试点场景",
        "希望在社区养老院安装毫米波跌倒检测终端，开展夜间看护试运行。",
    ),
    "llm": (
        "llm",
        "政务大模型私有化部署场景",
        "寻找区级政务办公场景，可部署于政务云，验证公文写作与政策问答。",
    ),
}


@pytest.fixture
def park(engine_client: TestClient, headers) -> dict[str, int]:
    admin = headers["admin"]
    ids: dict[str, int] = {}
    for key, body in ENTERPRISES.items():
        r = engine_client.post("/v1/enterprises", json={**body, "stage": "startup"}, headers=admin)
        assert r.status_code == 201, r.text
        ids[f"enterprise:{key}"] = r.json()["id"]
    for key, (owner, title, description) in NEEDS.items():
        body = {
            "enterprise_id": ids[f"enterprise:{owner}"],
            "title": title,
            "description": description,
            "kinds": ["scenario"],
            "region": "北京",
        }
        r = engine_client.post("/v1/needs", json=body, headers=admin)
        assert r.status_code == 201, r.text
        ids[f"need:{key}"] = r.json()["id"]
    r = engine_client.post("/v1/resources", json=SCENARIO, headers=admin)
    assert r.status_code == 201, r.text
    ids["scenario"] = r.json()["id"]
    return ids


def _matches(client: TestClient, park: dict[str, int], key: str, **params) -> list[dict]:
    headers = {**bearer(key), **params.pop("headers", {})}
    r = client.get(f"/v1/resources/{park['scenario']}/matches", params={"k": 10, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["matches"]


def _key(m: dict) -> str:
    return f"need:{m['need']['id']}" if m["type"] == "need" else f"enterprise:{m['enterprise']['id']}"


def test_the_fitting_enterprises_lead_and_filler_words_explain_nothing(engine_client, keys, park):
    found = _matches(engine_client, park, keys.admin, min_score=0)
    order = [_key(m) for m in found]
    names = {f"need:{park['need:fall']}": "fall need", f"need:{park['need:llm']}": "llm need"}
    names |= {f"enterprise:{park['enterprise:' + k]}": k for k in ENTERPRISES}
    ranked = [names[k] for k in order if k in names]
    assert ranked.index("fall need") < ranked.index("llm need")
    assert ranked.index("fall") < ranked.index("llm") and ranked.index("english") < ranked.index("llm")
    filler = {"场景", "部署", "可", "技术", "有限公司", "平台"}
    for m in found:
        assert not filler & set(m["explanation"]["matched_terms"]), m["explanation"]["matched_terms"]
    top = found[0]["explanation"]
    assert "跌倒" in top["matched_terms"] or "养老" in top["summary"]


def test_summaries_follow_the_language_asked(engine_client, keys, park):
    def summaries(**params) -> list[str]:
        return [
            m["explanation"]["summary"]
            for m in _matches(engine_client, park, keys.admin, min_score=0, **params)
        ]

    assert all("匹配度" in s for s in summaries())  # the scenario is Chinese: its own language by default
    english = summaries(language="en")
    assert all("match " in s and "匹配度" not in s for s in english)
    assert any("Elderly care" in s for s in english)  # the shared field, named in English
    assert summaries(headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"}) == english
    assert summaries(headers={"Accept-Language": "en"}, language="zh") == summaries()


def test_an_unknown_language_is_a_422(engine_client, keys, park):
    r = engine_client.get(
        f"/v1/resources/{park['scenario']}/matches", params={"language": "fr"}, headers=bearer(keys.admin)
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
