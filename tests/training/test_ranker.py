"""LearnedRanker and the evaluation around it, on small synthetic lists."""

from __future__ import annotations

import numpy as np
import pytest

from matcher.matching.ranker import Ranker, TransparentRanker
from training.data.labels import LabelledRows
from training.evaluation.compare import (
    NotEnoughData,
    bootstrap_ci,
    compare,
    grouped_kfold,
    grouped_split,
    per_query_ndcg,
    should_promote,
    train_and_compare,
)
from training.rankers.estimator import LearnedRanker, ips_weights, propensity


def synthetic(
    n_queries: int = 60, n_cands: int = 15, seed: int = 0, *, lexical_signal: bool = True
) -> LabelledRows:
    """Lists where the relevant item has a high *lexical* score but only middling relevance, so a model that
    learns from outcomes can beat the transparent ranker, which ranks by relevance alone."""
    rng = np.random.default_rng(seed)
    data = LabelledRows()
    for q in range(n_queries):
        hit = int(rng.integers(n_cands))
        rels = rng.uniform(0.3, 0.9, n_cands)
        for i in range(n_cands):
            lex = rng.uniform(0.0, 0.5) + (0.5 if (i == hit and lexical_signal) else 0.0)
            row = {"dense": float(rng.uniform(0.2, 0.6)), "lexical": float(lex), "relevance": float(rels[i])}
            data.add(f"q{q}", f"d{i}", row, int(i == hit), i + 1)
    return data


def test_fit_and_score_in_unit_interval():
    data = synthetic()
    model = LearnedRanker().fit(data.rows, data.labels, groups=data.groups, positions=data.positions)
    assert isinstance(model, Ranker)
    s = model.score(data.rows[:15])
    assert s.shape == (15,) and np.all((s >= 0) & (s <= 1))
    assert model.score([]).shape == (0,)
    assert model.n_positive_ == 60 and model.get_params()["model"] == "logistic"


def test_unfitted_ranker_refuses_to_score():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LearnedRanker().score([{"dense": 0.1}])


@pytest.mark.parametrize(
    "params", [{}, {"calibration": "isotonic"}, {"model": "boosting"}, {"objective": "pairwise"}]
)
def test_calibration_is_monotone_in_the_raw_score(params):
    data = synthetic(n_queries=20 if params.get("model") == "boosting" else 60, seed=1)
    model = LearnedRanker(**params).fit(data.rows, data.labels, groups=data.groups, positions=data.positions)
    rows = data.rows[:15]
    raw = model.decision_function(rows)
    cal = model.score(rows)
    order = np.argsort(raw)
    assert np.all(np.diff(cal[order]) >= -1e-12)
    # calibrated: the mean score is near the positive rate (1 in 15)
    allp = model.score_groups(data.rows, data.groups)
    assert abs(allp.mean() - 1 / 15) < 0.08


def test_learns_what_the_transparent_ranker_misses():
    data = synthetic(n_queries=80)
    model, result, split = train_and_compare(data, TransparentRanker(), seed=0)
    assert result.candidate > result.incumbent + 0.2
    assert result.promote and result.ci_low > 0
    assert split["train_queries"] + split["test_queries"] == 80


def test_promotion_refuses_a_model_that_is_not_better():
    data = synthetic(n_queries=80, lexical_signal=False)  # outcomes carry no learnable signal
    _, result, _ = train_and_compare(data, TransparentRanker(), seed=0)
    assert not result.promote
    # a ranker compared with itself never promotes
    same = compare(TransparentRanker(), TransparentRanker(), data, sorted(set(data.groups)))
    assert same.diff == 0 and not same.promote
    assert not should_promote(0.0) and should_promote(0.001)


def test_grouped_split_keeps_each_query_on_one_side():
    groups = [f"q{i % 37}" for i in range(500)]
    train, test = grouped_split(groups, test_size=0.5, seed=3)
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(groups)
    seen = []
    for tr, te in grouped_kfold(groups, k=5, seed=1):
        assert not set(tr) & set(te)
        seen += te
    assert sorted(seen) == sorted(set(groups))


def test_too_little_data_is_refused_with_the_reason():
    data = synthetic(n_queries=5)
    with pytest.raises(NotEnoughData, match="too little data"):
        train_and_compare(data, TransparentRanker())


def test_position_bias_weights():
    assert propensity(np.array([1, 2, 4]), eta=1.0).tolist() == [1.0, 0.5, 0.25]
    w = ips_weights(np.array([1, 5, 50]), np.array([1, 1, 0]), eta=1.0, clip=10)
    assert w.tolist() == [1.0, 5.0, 1.0]  # positives up-weighted by 1/propensity, negatives not
    assert ips_weights(np.array([100]), np.array([1]), eta=1.0, clip=10).tolist() == [10.0]


def test_bootstrap_ci_brackets_the_mean():
    mean, lo, hi = bootstrap_ci([0.1] * 50 + [0.0] * 50, seed=0)
    assert lo < mean < hi and lo > 0


def test_held_out_ndcg_of_logged_feedback_is_inverse_propensity_weighted():
    """Users see the top of the served list: a click at position 8 stands for ~8 relevant items unseen there."""

    class ByKey:
        def __init__(self, key: str) -> None:
            self.key = key

        def score(self, rows):
            return np.array([r[self.key] for r in rows], dtype=float)

    log = LabelledRows(source={"kind": "feedback"})
    for pos in range(1, 11):
        clicked = pos in (1, 8)
        log.add(
            "g",
            f"i{pos}",
            {"served": -pos, "other": 1.0 if pos == 8 else (0.5 if pos == 1 else 0.0)},
            int(clicked),
            pos,
        )
    served, other = ByKey("served"), ByKey("other")
    import math

    plain = per_query_ndcg(served, log, ["g"])["g"]
    assert plain == pytest.approx((1 + 1 / math.log2(9)) / (1 + 1 / math.log2(3)))
    weighted = per_query_ndcg(served, log, ["g"], eta=1.0)["g"]
    assert weighted == pytest.approx((1 + 8 / math.log2(9)) / (8 + 1 / math.log2(3)))
    assert per_query_ndcg(other, log, ["g"], eta=1.0)["g"] == pytest.approx(1.0)
    # the bias correction widens the served order's shortfall against the order that lifts the deep click
    assert 1.0 - weighted > 1.0 - plain
    assert per_query_ndcg(served, log, ["g"], eta=1.0, clip=2.0)["g"] == pytest.approx(
        (1 + 2 / math.log2(9)) / (2 + 1 / math.log2(3))
    )


def _region_rows(n_lists: int = 60, seed: int = 0):
    """Lists in which the outcome depends on the region fit, a little on the text, and not on recency."""
    rng = np.random.default_rng(seed)
    rows, y, g = [], [], []
    for q in range(n_lists):
        for _ in range(10):
            region = float(rng.random() < 0.5)
            rel = float(rng.random())
            row = {
                "dense": rel,
                "lexical": rel,
                "relevance": rel,
                "region": region,
                "recency": float(rng.random()),
            }
            rows.append(row)
            y.append(int(rng.random() < 0.05 + 0.6 * region + 0.1 * rel))
            g.append(str(q))
    return rows, y, g


@pytest.mark.parametrize("model", ["logistic", "boosting"])
def test_a_learned_ranker_says_what_it_learned(model):
    rows, y, g = _region_rows()
    m = LearnedRanker(model=model).fit(rows, y, groups=g)
    effects = m.effects_
    assert effects[0]["feature"] == "region" and effects[0]["weight"] > 0
    assert effects[0]["en"] == "same region" and effects[0]["zh"] == "同一地区"
    names = [e["feature"] for e in effects]
    assert "stage" not in names and "stage_unknown" not in names  # never varied: nothing to say
    assert [abs(e["weight"]) for e in effects] == sorted((abs(e["weight"]) for e in effects), reverse=True)
    if model == "logistic":
        assert "per standard deviation" in effects[0]["measure"]
        recency = next(e for e in effects if e["feature"] == "recency")
        assert abs(recency["weight"]) < effects[0]["weight"] / 5
