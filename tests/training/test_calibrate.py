"""Fusion weights and calibration per language: the weight that ranks best is chosen, the relevance is a
probability that rises with the fused similarity, and the report is held out by query."""

from __future__ import annotations

import json

import numpy as np

from matcher.matching.calibration import fusion_for, read_fusion
from training.evaluation.calibrate import Fusion, Pool, cross_validate, fit, write_calibration


def _pools(n: int, language: str, dense_decides: bool, seed: int = 0) -> list[Pool]:
    """Queries whose relevant candidate is found by the dense side (or by the lexical side) only."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        dense, lexical = rng.uniform(0, 0.5, 30), rng.uniform(0, 0.5, 30)
        labels = np.zeros(30)
        labels[0] = 1
        (dense if dense_decides else lexical)[0] = 0.9
        out.append(Pool(f"{language}-{i}", language, dense, lexical, labels, 1))
    return out


def test_each_language_gets_the_weight_of_the_side_that_finds_its_answers():
    params = fit(_pools(40, "latin", dense_decides=True) + _pools(40, "zh", dense_decides=False))
    assert params["latin"].w >= 0.5 > params["zh"].w
    f = params["zh"]
    low, high = f.relevance(np.array([0.1]), np.array([0.1])), f.relevance(np.array([0.1]), np.array([0.9]))
    assert high[0] > 0.5 > low[0]


def test_the_report_is_held_out_and_has_a_reliability_table():
    report = cross_validate(_pools(50, "zh", dense_decides=False), folds=5)["zh"]
    assert report["queries"] == 50 and len(report["fold_weights"]) == 5
    assert report["ndcg@10_fused_heldout"] > 0.9
    assert sum(r["candidates"] for r in report["reliability"]) == 50 * 30


def test_serving_reads_the_calibration_beside_the_model(tmp_path, encoder_dir):
    import shutil

    from embeddings.encoders.sentence import load_encoder

    model = tmp_path / "model"
    shutil.copytree(encoder_dir, model)
    write_calibration(
        model / "fusion.json", {"zh": Fusion(0.4, 0.3, 0.05), "latin": Fusion(0.7, 0.2, 0.1)}, {}
    )
    relevance = fusion_for(load_encoder(model))
    assert relevance.weight_for("医院") == 0.4 and relevance.weight_for("hospital") == 0.7
    assert relevance(0.9, 0.0, language="latin") > relevance(0.0, 0.9, language="latin")
    (model / "fusion.json").write_text(json.dumps({"languages": {"zh": {"w": 2, "mid": 0, "scale": 1}}}))
    assert fusion_for(load_encoder(model)).source == "built-in"  # a broken file is not served
    try:
        read_fusion(model / "fusion.json")
    except ValueError as exc:
        assert "weight" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("a weight above 1 was accepted")
