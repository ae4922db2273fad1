"""The document states the rules a body follows beyond its fields' types (a subject to match, an amount on a deal
only, slots in order, links without a cycle) and the bounds the deployment's settings give, and the server
takes what the document takes: integers as JSON Schema counts them, imports of the declared types only."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from matcher.domain.tables import Impression
from matcher.settings import Settings
from tests.conftest import TENANT


def _validator(doc: dict[str, Any], name: str) -> Any:
    """The document's schema `name`, with the components its references name."""
    return jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    )


def test_the_document_states_the_limits_of_the_apps_settings(settings, engine, encoder_dir, headers):
    narrow = settings.model_copy(update={"max_k": 7, "max_query_chars": 30, "encoder": str(encoder_dir)})
    with TestClient(create_app(narrow)) as client:
        doc = client.get("/openapi.json").json()
        assert "x-parkmatch-setting" not in json.dumps(doc)
        body = doc["components"]["schemas"]["MatchRequest"]["properties"]
        assert body["k"]["maximum"] == 7 and body["text"]["anyOf"][0]["maxLength"] == 30
        search = {p["name"]: p["schema"] for p in doc["paths"]["/v1/search"]["get"]["parameters"]}
        assert search["k"]["maximum"] == 7 and search["q"]["maxLength"] == 30
        for path in ("/v1/needs/{need_id}/matches", "/v1/resources/{resource_id}/matches"):
            params = {p["name"]: p["schema"] for p in doc["paths"][path]["get"]["parameters"]}
            assert params["k"]["maximum"] == 7, path
        admin = headers["admin"]
        assert client.post("/v1/match", json={"text": "芯片", "k": 7}, headers=admin).status_code == 200
        for body in ({"text": "芯片", "k": 8}, {"text": "芯" * 31}):
            r = client.post("/v1/match", json=body, headers=admin)
            assert r.status_code == 422, (body, r.text)
        assert client.get("/v1/search?q=芯片&k=8", headers=admin).status_code == 422
    default = create_app(Settings(), load_engine=False).openapi()
    assert default["components"]["schemas"]["MatchRequest"]["properties"]["k"]["maximum"] == Settings().max_k


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"text": "芯片"}, True),
        ({"need_id": 1, "enterprise_id": None, "text": " "}, True),
        ({"enterprise_id": 1, "text": None}, True),
        ({"text": "  "}, False),
        ({"text": None}, False),
        ({}, False),
        ({"need_id": 1, "enterprise_id": 1}, False),
    ],
)
def test_what_to_match_is_stated_as_the_server_takes_it(engine_client, headers, body, valid):
    doc = engine_client.get("/openapi.json").json()
    assert _validator(doc, "MatchRequest").is_valid(body) is valid
    r = engine_client.post("/v1/match", json=body, headers=headers["admin"])
    # a need or an enterprise that does not exist is not found; the body itself was taken
    assert (r.status_code in (200, 404)) is valid, r.text


def test_integers_in_match_and_feedback_bodies_are_json_schemas(engine_client, headers):
    admin = headers["admin"]
    body = {"text": "芯片", "k": 5.0, "per_kind": 2.0, "per_provider": 1.0, "filters": {"trl_min": 3.0}}
    r = engine_client.post("/v1/match", json=body, headers=admin)
    assert r.status_code == 200, r.text
    for bad in ({"k": 5.5}, {"k": True}, {"k": "5"}, {"per_kind": 2.5}, {"filters": {"trl_max": "9"}}):
        r = engine_client.post("/v1/match", json={"text": "芯片", **bad}, headers=admin)
        assert r.status_code == 422, (bad, r.text)
    r = engine_client.post("/v1/match", json={"need_id": 5.0}, headers=admin)
    assert r.status_code == 404, r.text
    r = engine_client.post("/v1/match", json={"need_id": 2**31}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "need_id"
    r = engine_client.post(
        "/v1/feedback", json={"request_id": "r", "resource_id": 7.0, "action": "clicked"}, headers=admin
    )
    assert r.status_code == 404, r.text


def test_an_amount_goes_with_a_deal_only_as_the_document_says(client, headers, payloads, engine):
    rid = client.post("/v1/resources", json=payloads.resource(), headers=headers["admin"]).json()["id"]
    with Session(engine) as s:
        s.add(Impression(request_id="req", tenant_id=TENANT, resource_id=rid, position=1, score=0.9))
        s.commit()
    doc = client.get("/openapi.json").json()
    validator = _validator(doc, "FeedbackCreate")
    for action, amount, valid in (("deal", 100.0, True), ("clicked", None, True), ("clicked", 100.0, False)):
        body = {"request_id": "req", "resource_id": rid, "action": action, "amount": amount}
        assert validator.is_valid(body) is valid
        r = client.post("/v1/feedback", json=body, headers=headers["admin"])
        assert (r.status_code == 201) is valid, r.text


def test_match_routes_answer_not_found_for_ids_beyond_any_store(engine_client, headers):
    for path in ("needs", "enterprises", "resources"):
        r = engine_client.get(f"/v1/{path}/{2**70}/matches", headers=headers["admin"])
        assert r.status_code == 404, (path, r.text)


def test_filters_and_record_tags_take_lists_as_documented(engine_client, headers, payloads):
    admin = headers["admin"]
    doc = engine_client.get("/openapi.json").json()
    industries = doc["components"]["schemas"]["MatchFilters"]["properties"]["industries"]["anyOf"]
    assert [branch["type"] for branch in industries] == ["array", "string", "null"]
    r = engine_client.post(
        "/v1/match", json={"text": "芯片", "filters": {"industries": "集成电路, 人工智能"}}, headers=admin
    )
    assert r.status_code == 200, r.text
    ent = engine_client.post("/v1/enterprises", json=payloads.enterprise(), headers=admin).json()
    # a listed name is one line (the document's item pattern); one string splits on line breaks
    r = engine_client.post(
        "/v1/needs", json=payloads.need(ent["id"], industries=["芯片\n设计"]), headers=admin
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("industries"), r.text
    r = engine_client.post("/v1/needs", json=payloads.need(ent["id"], industries="芯片\n设计"), headers=admin)
    assert r.status_code == 201 and len(r.json()["industries"]) == 2, r.text


def test_event_slots_and_chain_links_state_their_rules(client, headers):
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert "none overlapping" in schemas["EventCreate"]["properties"]["slots"]["description"]
    assert "no cycle" in schemas["ChainCreate"]["properties"]["links"]["description"]
    admin = headers["admin"]
    event = {"title": "对接会", "date": "2031-05-20", "tables": 2}
    for slots in ([{"start": "10:00", "end": "09:30"}], [{"start": "09:00", "end": "10:00"}] * 2):
        r = client.post("/v1/events", json={**event, "slots": slots}, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("slots"), r.text
    r = client.post(
        "/v1/events",
        json={**event, "slots": [{"start": "09:00", "end": "10:00"}, {"start": "10:00", "end": "10:30"}]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    for links in (
        [{"name_zh": "芯片", "feeds": ["l1"]}],
        [{"name_zh": "芯片", "feeds": ["l9"]}],
        [{"key": "a", "name_zh": "芯片"}, {"key": "a", "name_zh": "封装"}],
    ):
        r = client.post("/v1/chains", json={"name_zh": "集成电路", "links": links}, headers=admin)
        assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("links"), r.text


def test_the_enterprise_import_reads_the_declared_types_and_fields_only(client, headers):
    admin = headers["admin"]
    paths = client.get("/openapi.json").json()["paths"]
    bodies = [paths[p]["post"]["requestBody"] for p in ("/v1/resources:import", "/v1/enterprises:import")]
    encodings = [b["content"]["multipart/form-data"]["encoding"] for b in bodies]
    assert encodings[0] == encodings[1]
    assert all(b["content"]["multipart/form-data"]["schema"]["additionalProperties"] is False for b in bodies)
    table = "企业名称,简介\n远景激光,激光雷达研发\n".encode()
    url = "/v1/enterprises:import?dry_run=true"
    r = client.post(url, files={"file": ("a", table, "text/csv")}, headers=admin)
    assert r.status_code == 200 and r.json()["totals"]["created"] == 1, r.text
    r = client.post(url, files={"file": ("a.png", table, "image/png")}, headers=admin)
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"
    r = client.post(url, files={"file": ("a", table, "text/csv")}, data={"kind": "x"}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind", r.text
    r = client.post(url + "&encoding=klingon", files={"file": ("a", table, "text/csv")}, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "encoding", r.text
    gbk = {"file": ("a", "企业名称\n远景\n".encode("gbk"), "text/csv")}
    r = client.post(url + "&encoding=GBK", files=gbk, headers=admin)
    assert r.status_code == 200 and r.json()["encoding"] == "GBK", r.text
