"""GET /metrics: request series per route template, match stage timings, index sizes; no tenant data."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus text page (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
        if got == labels:
            return float(m.group(4))
    return 0.0


def test_metrics_count_requests_by_route_template_and_status(client: TestClient, headers, payloads) -> None:
    before = client.get("/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    made = client.post(
        "/v1/resources", json=payloads.resource(title="秘密量子项目"), headers=headers["admin"]
    )
    rid = made.json()["id"]
    for _ in range(3):
        assert client.get(f"/v1/resources/{rid}", headers=headers["admin"]).status_code == 200
    assert client.get(f"/v1/resources/{rid + 999}", headers=headers["admin"]).status_code == 404
    assert client.get("/no/such/path").status_code == 404

    text = client.get("/metrics").text
    route = "/v1/resources/{resource_id}"
    assert sample(text, "parkmatch_http_requests_total", method="GET", route=route, status="200") == 3
    assert sample(text, "parkmatch_http_requests_total", method="GET", route=route, status="404") == 1
    assert (
        sample(text, "parkmatch_http_requests_total", method="POST", route="/v1/resources", status="201") == 1
    )
    assert sample(text, "parkmatch_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert sample(text, "parkmatch_http_request_duration_seconds_count", method="GET", route=route) == 4
    assert sample(text, "parkmatch_http_request_duration_seconds_sum", method="GET", route=route) > 0
    # the raw path, the tenants and the records' text appear nowhere
    assert f"/v1/resources/{rid}" not in text
    assert "秘密" not in text and "tenant" not in text


def test_metrics_need_no_key_and_are_not_rate_limited(client: TestClient) -> None:
    for _ in range(60):  # more than the anonymous burst
        assert client.get("/metrics").status_code == 200


def test_match_stages_and_index_sizes(engine_client: TestClient, headers, payloads) -> None:
    for i in range(3):
        body = payloads.resource(title=f"量子传感器 {i}", description="量子传感用于导航。")
        assert engine_client.post("/v1/resources", json=body, headers=headers["admin"]).status_code == 201
    text = engine_client.get("/metrics").text
    assert sample(text, "parkmatch_index_records", side="resources") == 3
    assert sample(text, "parkmatch_match_stage_seconds_count", direction="forward", stage="retrieve") == 0

    for _ in range(2):
        r = engine_client.post("/v1/match", json={"text": "量子传感"}, headers=headers["admin"])
        assert r.status_code == 200
    text = engine_client.get("/metrics").text
    for stage in ("filter", "retrieve", "rank", "explain"):
        assert sample(text, "parkmatch_match_stage_seconds_count", direction="forward", stage=stage) == 2
    assert sample(text, "parkmatch_http_requests_total", method="POST", route="/v1/match", status="200") == 2
