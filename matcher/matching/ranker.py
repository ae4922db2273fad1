"""Rankers turn retrieval scores and fit features into one score in [0, 1] that means the same across queries.

`TransparentRanker` is the default: a documented formula a person can check by hand. Trained rankers
(training/rankers/estimator.py) implement the same protocol and are swapped in by the model registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from matcher.matching.fit import FIT_FEATURES

# retrieval components every ranker sees, in this order, before the fit features
RETRIEVAL_FEATURES = ("dense", "lexical", "relevance")
FEATURE_NAMES = RETRIEVAL_FEATURES + FIT_FEATURES

FIT_WEIGHTS = {
    "industry": 2.0,
    "region": 1.0,
    "stage": 1.5,
    "amount": 1.5,
    "trl": 1.0,
    "recency": 0.5,
    "deadline": 0.5,
}


@runtime_checkable
class Ranker(Protocol):
    version: str

    def score(self, rows: Sequence[dict[str, float | None]]) -> np.ndarray: ...


def feature_matrix(rows: Sequence[dict[str, float | None]]) -> np.ndarray:
    """Rows of features -> float matrix; unknown fit features become 0.5 plus an 'unknown' indicator column."""
    out = np.zeros((len(rows), len(FEATURE_NAMES) + len(FIT_FEATURES)), dtype=np.float32)
    for i, row in enumerate(rows):
        for j, name in enumerate(FEATURE_NAMES):
            v = row.get(name)
            out[i, j] = 0.5 if v is None else float(v)
        for j, name in enumerate(FIT_FEATURES):
            out[i, len(FEATURE_NAMES) + j] = 1.0 if row.get(name) is None else 0.0
    return out


class TransparentRanker:
    """score = relevance x (0.7 + 0.3 x fit), fit = weighted mean of the known fit features.

    `relevance` is the calibrated text relevance in [0, 1] (`matcher.matching.retrieval.Relevance`); fit can lift a
    relevant match by up to 30 % of its relevance but never makes an irrelevant text relevant."""

    version = "transparent-1"

    def __init__(self, weights: dict[str, float] | None = None, fit_share: float = 0.3) -> None:
        self.weights = weights or FIT_WEIGHTS
        self.fit_share = fit_share

    def fit_value(self, row: dict[str, float | None]) -> float:
        num = den = 0.0
        for name, w in self.weights.items():
            v = row.get(name)
            if v is None:
                continue
            num += w * float(v)
            den += w
        return num / den if den else 0.5

    def components(self, row: dict[str, float | None]) -> dict[str, float]:
        rel = float(row.get("relevance") or 0.0)
        fit = self.fit_value(row)
        return {"relevance": rel, "fit": fit, "score": rel * (1 - self.fit_share + self.fit_share * fit)}

    def score(self, rows: Sequence[dict[str, float | None]]) -> np.ndarray:
        return np.array([self.components(r)["score"] for r in rows], dtype=np.float64)
