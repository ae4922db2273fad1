"""Relay incubation over HTTP with the real engine: an incubator's graduate, the parks' shared chains and links
it fits, and the graduates a park sees for its own chains."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("store")
LINKS = [
    {
        "key": "lidar",
        "name_zh": "激光雷达",
        "name_en": "Lidar",
        "description": "车载激光雷达与环境感知传感器",
        "stage": "upstream",
        "feeds": ["mobility"],
    },
    {
        "key": "chip",
        "name_zh": "车规芯片",
        "name_en": "Chips",
        "description": "车规级集成电路芯片设计",
        "stage": "upstream",
        "feeds": ["mobility"],
    },
    {
        "key": "mobility",
        "name_zh": "出行服务",
        "name_en": "Mobility",
        "description": "自动驾驶出租车出行服务运营",
        "stage": "downstream",
    },
]


def _post(client, h, path, body):
    r = client.post(path, json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


def test_a_graduate_is_passed_on_to_the_parks_whose_shared_chains_it_fits(engine_client, headers):
    park, incubator = headers["admin"], headers["other"]
    shared = _post(
        engine_client,
        park,
        "/v1/chains",
        {"name_zh": "智能网联汽车", "name_en": "ICV", "links": LINKS, "shared": True, "min_score": 0.2},
    )
    _post(
        engine_client,
        park,
        "/v1/chains",
        {"name_zh": "内部链", "links": LINKS, "shared": False, "min_score": 0.2},
    )
    grad = _post(
        engine_client,
        incubator,
        "/v1/enterprises",
        {"name": "光感激光雷达", "description": "车载激光雷达与环境感知传感器研发"},
    )
    secret = _post(
        engine_client,
        incubator,
        "/v1/enterprises",
        {"name": "秘密雷达", "description": "车载激光雷达", "visibility": "private"},
    )
    m = engine_client.post(
        f"/v1/enterprises/{grad['id']}/graduation",
        json={"note": "A轮后毕业", "expected": "2031-09-01"},
        headers=incubator,
    )
    assert m.status_code == 201 and m.json()["enterprise"] == "光感激光雷达"
    assert (
        engine_client.post(f"/v1/enterprises/{grad['id']}/graduation", json={}, headers=incubator).status_code
        == 409
    )
    _post(engine_client, incubator, f"/v1/enterprises/{secret['id']}/graduation", {})
    # the incubator's view: the park's shared chain, its lidar link first, explained; the unshared chain absent
    r = engine_client.get(f"/v1/enterprises/{grad['id']}/relay", headers=incubator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["graduating"] is True
    assert [c["chain_id"] for c in body["chains"]] == [shared["id"]]
    top = body["chains"][0]["links"][0]
    assert top["key"] == "lidar" and top["fits"] and top["gap"] and top["park_enterprises"] == 0
    assert top["explanation"]["summary"] and top["explanation"]["summary_en"]
    assert body["chains"][0]["park"] == "tenant-a"
    # the park's view: the public graduate fits its lidar link; the private one is never shown
    g = engine_client.get("/v1/relay/graduates", headers=park).json()
    assert [x["enterprise_id"] for x in g["data"]] == [grad["id"]]
    assert g["data"][0]["links"][0]["key"] == "lidar" and g["data"][0]["incubator"] == "tenant-b"
    # only the enterprise's own tenant asks where it fits; another tenant's mark cannot be changed
    assert engine_client.get(f"/v1/enterprises/{grad['id']}/relay", headers=park).status_code == 404
    assert engine_client.delete(f"/v1/enterprises/{grad['id']}/graduation", headers=park).status_code == 404
    assert engine_client.get("/v1/graduations", headers=incubator).json()["count"] == 2
    assert (
        engine_client.delete(f"/v1/enterprises/{grad['id']}/graduation", headers=incubator).status_code == 204
    )
    assert engine_client.get("/v1/relay/graduates", headers=park).json()["count"] == 0
