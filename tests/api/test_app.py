"""The app's own surface: probes, the taxonomy, the docs, and a response model on every data route."""

from __future__ import annotations

import importlib
from unittest.mock import create_autospec

import pytest
from fastapi.routing import APIRoute

from matcher.matching.engine import MatchEngine

DATA_ROUTERS = ("resources", "enterprises", "needs", "keys")


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["x-request-id"]


def test_readyz_without_the_match_engine(client):
    r = client.get("/readyz")
    assert r.status_code == 503  # the app was built with load_engine=False
    assert r.json()["checks"] == {"database": "ok", "indexes": "loading"}


def test_readyz_when_the_engine_is_there(client):
    # readiness only asks whether an engine is there; a spec'd stand-in spares building the indexes
    client.app.state.app_state.matcher = create_autospec(MatchEngine, instance=True)
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"


def test_taxonomy_needs_a_key_and_is_bilingual(client, headers):
    refused = client.get("/v1/taxonomy")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="parkmatch"'
    r = client.get("/v1/taxonomy", headers=headers["platform"])
    assert r.status_code == 200
    tags = {t["id"]: t for t in r.json()["tags"]}
    assert tags["quantum-information"]["zh"] == "量子信息"
    assert tags["artificial-intelligence"]["parent"] == "next-gen-it"


def test_docs_and_openapi_are_served(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/resources",
        "/v1/resources/{resource_id}",
        "/v1/enterprises",
        "/v1/needs/{need_id}",
        "/v1/keys",
    ):
        assert path in paths
    create = paths["/v1/resources"]["post"]
    assert "201" in create["responses"]
    assert any(p["name"].lower() == "idempotency-key" for p in create["parameters"])
    # the per-kind details models are in the schema
    assert {"ResultDetails", "FundDetails", "ScenarioDetails", "IncubatorDetails"} <= set(
        spec["components"]["schemas"]
    )


def test_every_data_route_declares_its_response():
    routes = [
        route
        for name in DATA_ROUTERS
        for route in importlib.import_module(f"api.routes.{name}").router.routes
        if isinstance(route, APIRoute)
    ]
    assert len(routes) == 18  # five per record type, three for keys
    for route in routes:
        if route.status_code == 204:
            assert route.methods == {"DELETE"}
        else:
            assert route.response_model is not None, route.path


@pytest.mark.parametrize("path", ["/v1/nothing-here", "/v1/resources/1/extra"])
def test_unknown_paths_are_problem_404(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


def test_wrong_method_is_problem_405(client, headers):
    r = client.put("/v1/resources/1", json={}, headers=headers["admin"])
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("application/problem+json")
