"""Industry chains over HTTP with the real engine: links and their rules, the park's records placed by the
pipeline, officers' decisions kept across placements, gaps with who could fill them, and the SVG map."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.usefixtures("store")
PROBLEM = "application/problem+json"

LINKS = [
    {
        "key": "chip",
        "name": {"zh": "车规芯片", "en": "Automotive chips"},
        "description": "车规级芯片、集成电路与功率器件设计",
        "stage": "upstream",
        "feeds": ["compute"],
        "industries": ["集成电路"],
    },
    {
        "key": "lidar",
        "name_zh": "激光雷达",
        "name_en": "Lidar",
        "description": "车载激光雷达与环境感知传感器",
        "stage": "upstream",
        "feeds": ["compute"],
        "keywords": ["激光雷达", "感知"],
    },
    {
        "key": "hdmap",
        "name_zh": "高精地图",
        "name_en": "HD maps",
        "description": "自动驾驶高精地图测绘与定位服务",
        "stage": "upstream",
        "feeds": ["compute"],
        "keywords": ["高精地图", "测绘"],
    },
    {
        "key": "compute",
        "name_zh": "计算平台",
        "name_en": "Computing platform",
        "description": "自动驾驶域控制器与车载计算平台",
        "stage": "midstream",
        "feeds": ["mobility"],
    },
    {
        "key": "mobility",
        "name_zh": "出行服务",
        "name_en": "Mobility services",
        "description": "自动驾驶出租车与智慧出行服务运营",
        "stage": "downstream",
    },
]
CHAIN = {
    "name": {"zh": "智能网联汽车", "en": "Intelligent connected vehicles"},
    "links": LINKS,
    "gap_threshold": 1,
    "min_score": 0.2,
}


def _post(client: TestClient, h, path: str, body: dict) -> dict:
    r = client.post(path, json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def icv(engine_client: TestClient, headers):
    h, other = headers["admin"], headers["other"]
    ents = {
        "chip": _post(
            engine_client,
            h,
            "/v1/enterprises",
            {
                "name": "芯驰车规芯片",
                "description": "车规级芯片与集成电路设计，功率器件",
                "industries": ["集成电路"],
            },
        ),
        "lidar": _post(
            engine_client,
            h,
            "/v1/enterprises",
            {"name": "光感激光雷达", "description": "车载激光雷达与环境感知传感器研发"},
        ),
        "compute": _post(
            engine_client,
            h,
            "/v1/enterprises",
            {"name": "域控计算", "description": "自动驾驶域控制器与车载计算平台"},
        ),
        "mobility": _post(
            engine_client,
            h,
            "/v1/enterprises",
            {"name": "智行出行", "description": "自动驾驶出租车出行服务运营"},
        ),
        "prospect": _post(
            engine_client,
            h,
            "/v1/enterprises",
            {"name": "图新测绘", "description": "高精地图测绘与自动驾驶定位服务", "tier": "prospect"},
        ),
    }
    need = _post(
        engine_client,
        h,
        "/v1/needs",
        {
            "enterprise_id": ents["compute"]["id"],
            "title": "寻找高精地图数据合作",
            "description": "自动驾驶高精地图测绘与定位",
        },
    )
    res = _post(
        engine_client,
        h,
        "/v1/resources",
        {
            "kind": "result",
            "title": "激光雷达点云感知算法",
            "description": "车载激光雷达点云目标检测与环境感知",
            "details": {"holder": "某大学"},
        },
    )
    outside = _post(
        engine_client,
        other,
        "/v1/enterprises",
        {"name": "远图高精地图", "description": "高精地图采集测绘与众包更新服务"},
    )
    hidden = _post(
        engine_client,
        other,
        "/v1/enterprises",
        {"name": "秘图地图", "description": "高精地图测绘", "visibility": "private"},
    )
    chain = _post(engine_client, h, "/v1/chains", CHAIN)
    return {"ents": ents, "need": need, "res": res, "outside": outside, "hidden": hidden, "chain": chain}


def _link(chain: dict, key: str) -> dict:
    return next(x for x in chain["links"] if x["key"] == key)


def test_records_sit_on_their_links_and_the_gap_lists_who_could_fill_it(engine_client, headers, icv):
    h = headers["admin"]
    cid = icv["chain"]["id"]
    assert icv["chain"]["placed_at"] is None
    run = engine_client.post(f"/v1/chains/{cid}/placement", headers=h)
    assert run.status_code == 200, run.text
    assert run.json()["stats"]["records"] == {"enterprise": 5, "need": 1, "resource": 1}
    chain = engine_client.get(f"/v1/chains/{cid}", headers=h).json()
    for key in ("chip", "lidar", "compute", "mobility"):
        names = [e["name"] for e in _link(chain, key)["enterprises"]]
        assert names and names[0] == icv["ents"][key]["name"], (key, names)
    lidar = _link(chain, "lidar")
    assert [r["id"] for r in lidar["resources"]] == [icv["res"]["id"]]
    assert lidar["enterprises"][0]["summary"] and lidar["enterprises"][0]["score"] >= 0.2
    hdmap = _link(chain, "hdmap")
    assert hdmap["counts"]["enterprises"] == 0 and hdmap["gap"]
    assert [p["id"] for p in hdmap["prospects"]] == [icv["ents"]["prospect"]["id"]]
    assert [n["id"] for n in hdmap["needs"]] == [icv["need"]["id"]]
    assert hdmap["gaps"] == [chain["gaps"][0]] and _link(chain, "chip")["gaps"] == []
    gap = chain["gaps"][0]
    assert gap["key"] == "hdmap" and gap["rank"] == 1 and gap["needs"] == 1 and gap["zh"] and gap["en"]
    cands = {(c["origin"], c["id"]) for c in gap["candidates"]["enterprises"]}
    assert ("other_tenant", icv["outside"]["id"]) in cands
    assert ("prospect", icv["ents"]["prospect"]["id"]) in cands
    assert all(
        c["id"] != icv["hidden"]["id"] for c in gap["candidates"]["enterprises"]
    )  # private: never listed
    # the map: one box per link, the gap outlined and ranked
    svg = engine_client.get(f"/v1/chains/{cid}/map.svg", headers=h)
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.text)
    boxes = root.findall(".//{http://www.w3.org/2000/svg}g")
    assert [b.get("data-key") for b in boxes] == [x["key"] for x in LINKS]
    assert "缺口 Gap #1" in svg.text and "高精地图" in svg.text


def test_officer_decisions_outlive_a_new_placement(engine_client, headers, icv):
    h = headers["admin"]
    cid = icv["chain"]["id"]
    chip, mobility = icv["ents"]["chip"]["id"], icv["ents"]["mobility"]["id"]
    pin = _post(
        engine_client,
        h,
        f"/v1/chains/{cid}/placements",
        {
            "link_key": "hdmap",
            "record_type": "enterprise",
            "record_id": mobility,
            "decision": "pinned",
            "reason": "负责人确认",
        },
    )
    _post(
        engine_client,
        h,
        f"/v1/chains/{cid}/placements",
        {"link_key": "chip", "record_type": "enterprise", "record_id": chip, "decision": "excluded"},
    )
    for _ in range(2):
        assert engine_client.post(f"/v1/chains/{cid}/placement", headers=h).status_code == 200
        chain = engine_client.get(f"/v1/chains/{cid}", headers=h).json()
        assert chip not in [e["id"] for e in _link(chain, "chip")["enterprises"]]
        pinned = [e for e in _link(chain, "hdmap")["enterprises"] if e["id"] == mobility]
        assert pinned and pinned[0]["decision"] == "pinned" and pinned[0]["source"] == "officer"
    where = engine_client.get(
        f"/v1/chains/{cid}/placements", params={"record_type": "enterprise", "record_id": chip}, headers=h
    ).json()
    assert {p["link_key"]: p["decision"] for p in where["data"]}["chip"] == "excluded"
    assert engine_client.delete(f"/v1/chains/{cid}/placements/{pin['id']}", headers=h).status_code == 204
    engine_client.post(f"/v1/chains/{cid}/placement", headers=h)
    chain = engine_client.get(f"/v1/chains/{cid}", headers=h).json()
    assert mobility not in [e["id"] for e in _link(chain, "hdmap")["enterprises"]]
    # a deleted record leaves the chain, officers' decisions about it too
    assert engine_client.delete(f"/v1/enterprises/{chip}", headers=h).status_code == 204
    gone = engine_client.get(
        f"/v1/chains/{cid}/placements", params={"record_type": "enterprise", "record_id": chip}, headers=h
    )
    assert gone.json()["data"] == []
    theirs = engine_client.post(
        f"/v1/chains/{cid}/placements",
        json={
            "link_key": "chip",
            "record_type": "enterprise",
            "record_id": icv["outside"]["id"],
            "decision": "pinned",
        },
        headers=h,
    )
    assert theirs.status_code == 422 and theirs.json()["errors"][0]["type"] == "other_tenant"


@pytest.mark.parametrize(
    ("links", "field", "kind"),
    [
        (
            [{"key": "a", "name_zh": "甲", "feeds": ["b"]}, {"key": "b", "name_zh": "乙", "feeds": ["a"]}],
            "links",
            "cycle",
        ),
        ([{"key": "a", "name_zh": "甲", "feeds": ["a"]}], "links", "cycle"),
        (
            [
                {"key": "a", "name_zh": "甲", "upstream": ["c"]},
                {"key": "c", "name_zh": "丙", "upstream": ["a"]},
            ],
            "links",
            "cycle",
        ),
        ([{"key": "a", "name_zh": "甲", "feeds": ["zz"]}], "links.0.feeds.0", "not_found"),
        ([{"key": "a", "name_zh": "甲"}, {"key": "a", "name_zh": "乙"}], "links.1.key", "duplicate"),
    ],
)
def test_bad_chains_are_refused(client, headers, links, field, kind):
    r = client.post("/v1/chains", json={"name_zh": "链", "links": links}, headers=headers["admin"])
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    assert (r.json()["errors"][0]["field"], r.json()["errors"][0]["type"]) == (field, kind)
    assert client.get("/v1/chains", headers=headers["admin"]).json()["count"] == 0


def test_chains_are_the_parks_own(client, headers):
    h = headers["admin"]
    r = client.post("/v1/chains", json=CHAIN, headers=h | {"Idempotency-Key": "c1"})
    again = client.post("/v1/chains", json=CHAIN, headers=h | {"Idempotency-Key": "c1"})
    assert r.status_code == again.status_code == 201 and r.json()["id"] == again.json()["id"]
    cid = r.json()["id"]
    assert [x["depth"] for x in r.json()["links"]] == [0, 0, 0, 1, 2]
    assert client.get(f"/v1/chains/{cid}", headers=headers["other"]).status_code == 404
    assert client.get("/v1/chains", headers=headers["platform"]).status_code == 403
    assert client.post(f"/v1/chains/{cid}/placement", headers=headers["other"]).status_code in (404, 503)
    # links replaced: a kept key keeps its id; a new cycle is refused and changes nothing
    before = {x["key"]: x["id"] for x in r.json()["links"]}
    patched = client.patch(
        f"/v1/chains/{cid}", json={"links": [dict(x, feeds=[]) for x in LINKS[:2]], "shared": True}, headers=h
    ).json()
    assert {x["key"]: x["id"] for x in patched["links"]} == {k: before[k] for k in ("chip", "lidar")}
    assert patched["shared"] is True
    cyc = [{"key": "a", "name_zh": "甲", "feeds": ["a"]}]
    assert client.patch(f"/v1/chains/{cid}", json={"links": cyc}, headers=h).status_code == 422
    assert len(client.get(f"/v1/chains/{cid}", headers=h).json()["links"]) == 2
    trail = client.get("/v1/audit", params={"record_type": "chain"}, headers=h).json()
    assert [e["action"] for e in trail["data"]] == ["create", "update"]
    assert client.delete(f"/v1/chains/{cid}", headers=h).status_code == 204
