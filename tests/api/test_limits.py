"""Request hygiene: body size limits (declared and streamed), malformed JSON, request ids, missing keys."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.middleware import BodyLimitMiddleware
from matcher.settings import Settings

URL = "/v1/resources"


def _count(client, headers) -> int:
    return client.get(URL, headers=headers["admin"]).json()["count"]


def _chunks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _problem(r, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    return body


def test_ten_megabyte_description_is_413_before_parsing(client, headers, payloads):
    body = payloads.resource(description="长" * 3_500_000)  # ~10 MB of UTF-8
    r = client.post(URL, json=body, headers=headers["admin"])
    problem = _problem(r, 413)
    assert "1,000,000 bytes" in problem["detail"]
    assert r.headers["x-request-id"]
    assert _count(client, headers) == 0


def test_streamed_body_is_counted(client, headers, payloads):
    data = json.dumps(payloads.resource(description="x" * 1_200_000)).encode()
    r = client.post(
        URL, content=_chunks(data), headers={**headers["admin"], "Content-Type": "application/json"}
    )
    _problem(r, 413)
    assert _count(client, headers) == 0
    small = json.dumps(payloads.resource()).encode()
    ok = client.post(
        URL, content=_chunks(small, 64), headers={**headers["admin"], "Content-Type": "application/json"}
    )
    assert ok.status_code == 201, ok.text


def test_limit_comes_from_settings(tmp_path, headers, payloads, engine, settings):
    small = Settings(data_dir=settings.data_dir, database_url=settings.database_url, max_body_bytes=300)
    with TestClient(create_app(small, load_engine=False)) as c:
        assert (
            c.post(URL, json=payloads.resource(description="y" * 400), headers=headers["admin"]).status_code
            == 413
        )
        assert c.post(URL, json={"kind": "result", "title": "t"}, headers=headers["admin"]).status_code == 201


def test_imports_have_their_own_limit(client, headers):
    mw = BodyLimitMiddleware(app=None, max_bytes=10, overrides={r":import$": 100})
    assert (mw.limit_for("/v1/resources:import"), mw.limit_for("/v1/resources")) == (100, 10)
    r = client.post(
        "/v1/resources:import",
        content=b"x" * 1_500_000,
        headers={**headers["admin"], "Content-Type": "text/csv"},
    )
    assert "1,000,000 bytes" not in r.text  # whatever the import route says, the JSON limit did not apply


def test_long_description_within_the_body_limit_is_422_on_the_field(client, headers, payloads):
    r = client.post(URL, json=payloads.resource(description="x" * 30_000), headers=headers["admin"])
    problem = _problem(r, 422)
    assert problem["errors"][0]["field"] == "description"
    assert "20000" in problem["errors"][0]["message"]
    assert _count(client, headers) == 0


@pytest.mark.parametrize(
    "raw", [b'{"kind": "result", "title": ', b"{'kind': 'result'}", b"[1, 2,", b"\xff\xfe"]
)
def test_malformed_json(client, headers, raw):
    r = client.post(URL, content=raw, headers={**headers["admin"], "Content-Type": "application/json"})
    problem = _problem(r, 422)
    assert "malformed JSON" in problem["detail"]
    assert _count(client, headers) == 0


def test_body_that_is_not_an_object(client, headers):
    problem = _problem(client.post(URL, json=[1, 2], headers=headers["admin"]), 422)
    assert problem["errors"]


def test_request_id_is_echoed_or_minted(client, headers):
    r = client.get(URL, headers={**headers["admin"], "X-Request-ID": "trace-42"})
    assert r.headers["x-request-id"] == "trace-42"
    minted = client.get(URL, headers=headers["admin"]).headers["x-request-id"]
    assert len(minted) == 32
    odd = client.get(URL, headers={**headers["admin"], "X-Request-ID": "bad id\twith spaces"})
    assert odd.headers["x-request-id"] != "bad id\twith spaces" and len(odd.headers["x-request-id"]) == 32
    assert client.get("/v1/resources/5", headers={"X-Request-ID": "e1"}).headers["x-request-id"] == "e1"


@pytest.mark.parametrize(
    "auth",
    [None, "Bearer", "Bearer nope", "Bearer pm_123_456", "Basic dXNlcjpwYXNz", "Bearer pm_000000000000_x"],
)
@pytest.mark.parametrize(
    ("method", "path"), [("get", URL), ("post", URL), ("get", "/v1/needs/1"), ("get", "/v1/keys")]
)
def test_missing_or_invalid_key_is_401(client, keys, auth, method, path):
    r = client.request(method, path, headers={"Authorization": auth} if auth else {}, json={})
    problem = _problem(r, 401)
    assert "API key" in problem["detail"]


def test_match_limits_come_from_settings(monkeypatch, engine_settings, engine, headers, payloads):
    monkeypatch.setenv("MATCHER_MAX_K", "5")
    monkeypatch.setenv("MATCHER_MAX_QUERY_CHARS", "2500")
    limited = Settings(
        data_dir=engine_settings.data_dir,
        database_url=engine_settings.database_url,
        encoder=engine_settings.encoder,
    )
    assert (limited.max_k, limited.max_query_chars) == (5, 2500)
    admin = headers["admin"]
    with TestClient(create_app(limited)) as c:
        rid = c.post(URL, json=payloads.resource(), headers=admin).json()["id"]
        refused = [
            c.post("/v1/match", json={"text": "量子传感", "k": 6}, headers=admin),
            c.get("/v1/search", params={"q": "量子传感", "k": 6}, headers=admin),
            c.get(f"/v1/resources/{rid}/matches", params={"k": 6}, headers=admin),
        ]
        for r in refused:
            problem = _problem(r, 422)
            assert problem["errors"][0]["field"] == "k" and "5" in problem["errors"][0]["message"]
            assert problem["detail"].startswith("k: ")
        assert c.post("/v1/match", json={"text": "量子传感", "k": 5}, headers=admin).status_code == 200
        # 2,400 characters: over the default limit of 2,000, within this one
        long_text = "量子传感" * 600
        assert c.post("/v1/match", json={"text": long_text, "k": 5}, headers=admin).status_code == 200
        assert c.get("/v1/search", params={"q": long_text, "k": 5}, headers=admin).status_code == 200
        too_long = long_text + "x" * 101
        problem = _problem(c.post("/v1/match", json={"text": too_long, "k": 5}, headers=admin), 422)
        assert problem["errors"][0]["field"] == "text" and "2500" in problem["errors"][0]["message"]
        problem = _problem(c.get("/v1/search", params={"q": too_long, "k": 5}, headers=admin), 422)
        assert problem["errors"][0]["field"] == "q"
