"""The promotion rule: activate, put on interleaved trial, or keep what serves."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("ci", "kind", "running", "expect"),
    [
        ((0.01, 0.05), "feedback", False, "activated"),
        ((-0.03, 0.04), "feedback", False, "trial"),
        ((-0.06, -0.01), "feedback", False, "rejected"),
        ((-0.03, 0.04), "qrels", False, "rejected"),  # unbiased labels: nothing for live traffic to add
        ((-0.03, 0.04), "feedback", True, "rejected"),  # a running trial is not replaced
    ],
)
def test_the_promotion_rule_activates_tries_or_keeps(
    tmp_path, monkeypatch, ci, kind, running, expect, make_ranker
):
    import training.rankers.promotion as promotion
    from training.data.labels import LabelledRows
    from training.evaluation.compare import Comparison
    from training.registry import TrainingRegistry

    reg = TrainingRegistry(tmp_path / "registry")
    if running:
        other = reg.register(make_ranker())
        reg.start_trial(other.id, incumbent="transparent-1")
    cmp = Comparison(40, 0.7, 0.69, (ci[0] + ci[1]) / 2, ci[0], ci[1], ci[0] > 0)
    monkeypatch.setattr(promotion, "train_and_compare", lambda *a, **k: (make_ranker(), cmp, {}))
    data = LabelledRows(source={"kind": "qrels" if kind == "qrels" else "feedback"})
    out = promotion.train_and_decide(reg, data, source={}, params={})
    status = reg.get(out["model"]).status
    if expect == "activated":
        assert out["activated"] and reg.active_id() == out["model"] and status == "active"
    elif expect == "trial":
        assert out["trial"] and reg.trial()["id"] == out["model"] and status == "trial"
        assert reg.trial()["incumbent"] == "transparent-1" and reg.active_id() is None
    else:
        assert not out["activated"] and not out["trial"] and status == "rejected"
        assert reg.active_id() is None
        assert (reg.trial() or {}).get("id") != out["model"]
