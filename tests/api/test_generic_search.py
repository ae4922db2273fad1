"""Which lexical searches leave the generic park words out: a match from a need or an enterprise and the reverse
direction do; free text searches every word (docs/matching.md has the measurements behind this)."""

from __future__ import annotations

NEED_TEXT = "寻求可部署的场景与技术平台，开展锂电池回收试点"
FILLER_ONLY = {
    "kind": "scenario",
    "title": "政务办公场景开放",
    "description": "开放可部署的场景与技术平台，欢迎开展合作。",
}
ON_TOPIC = {"kind": "result", "title": "退役锂电池回收工艺", "description": "锂电池拆解与材料回收。"}


def _ids(client, headers, **body) -> set[int]:
    r = client.post("/v1/match", json={"k": 20, "min_score": 0, "dense_weight": 0, **body}, headers=headers)
    assert r.status_code == 200, r.text
    return {m["resource"]["id"] for m in r.json()["matches"]}


def test_need_matches_leave_filler_out_and_free_text_keeps_it(engine_client, headers):
    admin = headers["admin"]
    ids = {}
    for name, body in (("filler", FILLER_ONLY), ("topic", ON_TOPIC)):
        r = engine_client.post("/v1/resources", json=body, headers=admin)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    ent = engine_client.post("/v1/enterprises", json={"name": "循环材料公司"}, headers=admin).json()
    need = engine_client.post(
        "/v1/needs",
        json={"enterprise_id": ent["id"], "title": "电池回收合作", "description": NEED_TEXT},
        headers=admin,
    ).json()
    # lexical only (dense weight 0): the scenario that shares nothing but 场景, 部署, 平台 ... is not a candidate
    assert _ids(engine_client, admin, need_id=need["id"]) == {ids["topic"]}
    # typed as free text, every word is searched
    assert _ids(engine_client, admin, text=NEED_TEXT) == {ids["filler"], ids["topic"]}
