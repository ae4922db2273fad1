"""bench/ranker_features.py: its models find a signal the default misses, and its metric is nDCG@10."""

from __future__ import annotations

import numpy as np
import pytest

from bench.ranker_features import cross_validate, design, ndcg10


def _queries(n: int = 60, seed: int = 0) -> list[dict]:
    """One relevant document per query; `lexical` marks it well, the default's `relevance` only weakly."""
    rng = np.random.default_rng(seed)
    out = []
    for q in range(n):
        rows = []
        for i in range(30):
            label = int(i == 0)
            rows.append(
                {
                    "label": label,
                    "dense": float(rng.random()),
                    "lexical": float(rng.random() + 0.8 * label),
                    "relevance": float(rng.random() + 0.1 * label),
                    "sent_bigrams": float(rng.random()),
                }
            )
        out.append({"query": str(q), "rows": rows, "relevant": ["d0"]})
    return out


def test_ndcg10_counts_the_relevant_rank():
    rows = [{"label": 0}, {"label": 1}, {"label": 0}]
    assert ndcg10(np.array([0.9, 0.5, 0.1]), rows, ["x"]) == pytest.approx(1 / np.log2(3))
    assert ndcg10(np.array([0.1, 0.5, 0.2]), rows, ["x"]) == 1.0


def test_list_features_are_relative_to_the_list():
    rows = [
        {"lexical": 0.5, "dense": 0.2, "sent_bigrams": 0.1},
        {"lexical": 0.9, "dense": 0.1, "sent_bigrams": 0.3},
    ]
    x = design(rows, ["list"])
    assert x.shape == (2, 6)
    assert x[1, 0] == 0.0 and x[0, 0] == pytest.approx(-0.4)  # lexical minus the list's best
    assert x[1, 1] == 0.0 and x[0, 1] == pytest.approx(np.log(2))  # log1p(rank)


@pytest.mark.parametrize("model", ["logistic", "listwise"])
def test_a_learned_ranker_finds_what_the_default_misses(model):
    learned, default = cross_validate(_queries(), ["dense", "lexical", "relevance"], model, folds=3, seed=0)
    assert learned.mean() > default.mean() + 0.2
