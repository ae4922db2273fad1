"""The cultivation pipeline over HTTP: tier moves recorded with who, when and why, each tier's policy, the
funnel by tier and chain, officers' follow-ups, and prospect lists imported from a file."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from matcher.domain.tables import Feedback, Impression

pytestmark = pytest.mark.usefixtures("store")
PROBLEM = "application/problem+json"


def _ent(client, h, **over) -> int:
    body = {"name": "企业", "description": "芯片设计", "industries": ["集成电路"]} | over
    r = client.post("/v1/enterprises", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_moves_are_recorded_with_who_when_and_why(client, headers, keys):
    h = headers["admin"]
    eid = _ent(client, h, tier="prospect")
    r = client.post(
        f"/v1/enterprises/{eid}/tier",
        json={"tier": "incubating", "reason": "完成摸底走访"},
        headers=headers["officer"],
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["enterprise"]["tier"] == "incubating"
    t = body["transition"]
    assert (t["from_tier"], t["to_tier"], t["reason"], t["source"]) == (
        "prospect",
        "incubating",
        "完成摸底走访",
        "api",
    )
    assert t["actor"].startswith("key:") and t["at"]
    same = client.post(f"/v1/enterprises/{eid}/tier", json={"tier": "incubating"}, headers=h).json()
    assert same["transition"] is None
    client.patch(f"/v1/enterprises/{eid}", json={"tier": "key_account"}, headers=h)
    hist = client.get(f"/v1/enterprises/{eid}/tier-history", headers=h).json()["data"]
    assert [(x["from_tier"], x["to_tier"], x["source"]) for x in hist] == [
        ("incubating", "key_account", "update"),
        ("prospect", "incubating", "api"),
        (None, "prospect", "create"),
    ]
    out = client.post(
        f"/v1/enterprises/{eid}/tier", json={"tier": None, "reason": "迁出园区"}, headers=h
    ).json()
    assert out["enterprise"]["tier"] is None and out["transition"]["to_tier"] is None
    trail = client.get("/v1/audit", params={"action": "tier.change"}, headers=h).json()["data"]
    assert len(trail) == 4


def test_tiers_are_the_parks_own_business(client, headers):
    theirs = _ent(client, headers["other"])
    assert (
        client.post(
            f"/v1/enterprises/{theirs}/tier", json={"tier": "incubating"}, headers=headers["admin"]
        ).status_code
        == 404
    )
    mine = _ent(client, headers["admin"])
    assert (
        client.post(
            f"/v1/enterprises/{mine}/tier", json={"tier": "incubating"}, headers=headers["platform"]
        ).status_code
        == 403
    )
    assert client.get("/v1/cultivation/funnel", headers=headers["platform"]).status_code == 403
    bad = client.post(f"/v1/enterprises/{mine}/tier", json={"tier": "vip"}, headers=headers["admin"])
    assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM


def test_a_tiers_policy_sets_digest_preferences(client, headers):
    h = headers["admin"]
    already = _ent(client, h, tier="key_account", digest_kinds=["result"])
    policy = {
        "digest_frequency": "biweekly",
        "digest_kinds": ["fund", "scenario"],
        "follow_up": True,
        "follow_up_min_score": 0.6,
    }
    r = client.put("/v1/cultivation/policies/key_account", json=policy, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["applied_to"] == 1 and r.json()["defined"] and r.json()["zh"] == "精准服务"
    got = client.get(f"/v1/enterprises/{already}", headers=h).json()
    assert (got["digest_frequency"], got["digest_kinds"]) == ("biweekly", ["fund", "scenario"])
    newcomer = _ent(client, h, tier="incubating")
    client.post(f"/v1/enterprises/{newcomer}/tier", json={"tier": "key_account"}, headers=h)
    assert client.get(f"/v1/enterprises/{newcomer}", headers=h).json()["digest_frequency"] == "biweekly"
    listed = client.get("/v1/cultivation/policies", headers=h).json()["data"]
    assert [(p["tier"], p["defined"]) for p in listed] == [
        ("prospect", False),
        ("incubating", False),
        ("key_account", True),
    ]
    assert client.put("/v1/cultivation/policies/gold", json=policy, headers=h).status_code == 422


def test_the_funnel_by_tier_and_by_chain(client, headers):
    h = headers["admin"]
    a = _ent(client, h, tier="prospect")
    b = _ent(client, h, tier="prospect")
    c = _ent(client, h, tier="key_account")
    _ent(client, h)
    client.post(f"/v1/enterprises/{b}/tier", json={"tier": "incubating"}, headers=h)
    chain = client.post(
        "/v1/chains",
        json={"name_zh": "链", "links": [{"key": "x", "name_zh": "芯片"}, {"key": "y", "name_zh": "封测"}]},
        headers=h,
    ).json()
    for eid in (a, b, c):
        r = client.post(
            f"/v1/chains/{chain['id']}/placements",
            json={"link_key": "x", "record_type": "enterprise", "record_id": eid, "decision": "pinned"},
            headers=h,
        )
        assert r.status_code == 201
    f = client.get("/v1/cultivation/funnel", params={"chain_id": chain["id"]}, headers=h).json()
    assert f["tiers"] == {"prospect": 1, "incubating": 1, "key_account": 1, "none": 1}
    assert f["moves"] == {"none->prospect": 2, "none->key_account": 1, "prospect->incubating": 1}
    per = {x["key"]: x["tiers"] for x in f["links"]}
    assert per["x"] == {"prospect": 1, "incubating": 1, "key_account": 1, "none": 0}
    assert sum(per["y"].values()) == 0


def test_follow_ups_list_good_unanswered_matches_of_the_tiers_that_ask(client, headers, payloads):
    h = headers["admin"]
    key = _ent(client, h, tier="key_account", name="重点企业")
    other = _ent(client, h, tier="incubating")
    res = client.post("/v1/resources", json=payloads.resource(), headers=h).json()["id"]
    client.put(
        "/v1/cultivation/policies/key_account",
        json={"follow_up": True, "follow_up_min_score": 0.5},
        headers=h,
    )
    with Session(client.app.state.app_state.db) as s:
        for rid, eid, score in (
            ("r-good", key, 0.8),
            ("r-weak", key, 0.3),
            ("r-answered", key, 0.9),
            ("r-other", other, 0.9),
        ):
            s.add(
                Impression(
                    request_id=rid,
                    tenant_id="tenant-a",
                    enterprise_id=eid,
                    resource_id=res,
                    position=1,
                    score=score,
                )
            )
        s.add(
            Feedback(
                tenant_id="tenant-a",
                request_id="r-answered",
                enterprise_id=key,
                resource_id=res,
                action="contacted",
            )
        )
        s.commit()
    data = client.get("/v1/cultivation/follow-ups", headers=h).json()["data"]
    assert [(x["request_id"], x["enterprise"], x["tier"]) for x in data] == [
        ("r-good", "重点企业", "key_account")
    ]


CSV = (
    "企业名称,简介,行业,梯队,统一社会信用代码,邮箱\n"
    "远景激光,激光雷达研发,人工智能,,91110000A,a@example.com\n"
    "图新测绘,高精地图测绘,,重点,91110000B,\n"
    "坏邮箱公司,描述,,,91110000C,not-an-email\n"
)


def test_prospect_lists_come_in_through_import(client, headers):
    h = headers["admin"]
    r = client.post(
        "/v1/enterprises:import", content=CSV.encode("utf-8"), headers=h | {"Content-Type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["totals"] == {"rows": 3, "created": 2, "updated": 0, "unchanged": 0, "rejected": 1}
    assert rep["rows"][2]["reason"].startswith("email")
    ents = {e["name"]: e for e in client.get("/v1/enterprises", headers=h).json()["data"]}
    assert ents["远景激光"]["tier"] == "prospect" and ents["图新测绘"]["tier"] == "key_account"
    assert ents["远景激光"]["external_id"] == "91110000A"
    hist = client.get(f"/v1/enterprises/{ents['远景激光']['id']}/tier-history", headers=h).json()["data"]
    assert [(x["to_tier"], x["source"]) for x in hist] == [("prospect", "import")]
    again = client.post(
        "/v1/enterprises:import", content=CSV.encode("gbk"), headers=h | {"Content-Type": "text/csv"}
    ).json()
    assert again["totals"]["created"] == 0 and again["totals"]["rejected"] == 1
    no_name = client.post(
        "/v1/enterprises:import", content=b"foo,bar\n1,2\n", headers=h | {"Content-Type": "text/csv"}
    )
    assert no_name.status_code == 422 and no_name.headers["content-type"] == PROBLEM
    assert (
        client.post(
            "/v1/enterprises:import",
            content=CSV.encode(),
            headers=headers["platform"] | {"Content-Type": "text/csv"},
        ).status_code
        == 403
    )
