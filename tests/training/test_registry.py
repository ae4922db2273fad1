"""Registering trained models: a new version with its manifest."""

from __future__ import annotations

import json

import pytest

from training.registry import TrainingRegistry


@pytest.fixture
def registry(tmp_path) -> TrainingRegistry:
    return TrainingRegistry(tmp_path / "models" / "registry")


def test_register_writes_a_manifest(registry, make_ranker):
    v = registry.register(
        make_ranker(), data={"kind": "synthetic"}, metrics={"ndcg@10": 0.5}, ci={"low": 0.01}
    )
    m = json.loads((registry.root / v.id / "manifest.json").read_text())
    for key in (
        "kind",
        "data",
        "params",
        "metrics",
        "ci",
        "library_versions",
        "created_at",
        "status",
        "sha256",
    ):
        assert key in m
    assert m["status"] == "candidate" and m["kind"] == "ranker"
    loaded = registry.load(v.id)
    assert loaded.version == v.id
    assert registry.load_active() is None  # registering does not activate
