"""LearnedRanker as serving sees it: the fitted, calibrated outcome model that scores one served list.

Fitting lives in training (`training.rankers.estimator.LearnedRanker` subclasses this class and adds `fit`); the
registry's artefacts pickle this class, so a serving process loads them without importing training."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from threadpoolctl import ThreadpoolController

from matcher.matching.ranker import RETRIEVAL_FEATURES, feature_matrix

LIST_FEATURES = tuple(f"{name}_gap" for name in RETRIEVAL_FEATURES) + tuple(
    f"{name}_rank" for name in RETRIEVAL_FEATURES
)


@functools.lru_cache(maxsize=1)
def _threadpools() -> ThreadpoolController:
    """Inspecting the loaded thread pools takes ~2 ms; done once, limiting them afterwards is ~3 µs."""
    return ThreadpoolController()


def one_openmp_thread() -> AbstractContextManager[Any]:
    """Gradient boosting on a few hundred rows: OpenMP threads only contend with the serving process."""
    return _threadpools().limit(limits=1, user_api="openmp")


def list_features(rows: Sequence[dict[str, float | None]]) -> np.ndarray:
    """Each retrieval score minus the list's best, and its rank in the list scaled to [0, 1]."""
    n = len(rows)
    out = np.zeros((n, len(LIST_FEATURES)), dtype=np.float64)
    if n == 0:
        return out
    k = len(RETRIEVAL_FEATURES)
    for j, name in enumerate(RETRIEVAL_FEATURES):
        v = np.array([float(r.get(name) or 0.0) for r in rows])
        out[:, j] = v - v.max()
        order = np.argsort(-v, kind="stable")
        ranks = np.empty(n)
        ranks[order] = np.arange(n)
        out[:, k + j] = np.log1p(ranks) / np.log1p(max(n - 1, 1)) if n > 1 else 0.0
    return out


def design_matrix(rows: Sequence[dict[str, float | None]], *, use_list_features: bool) -> np.ndarray:
    x = feature_matrix(rows).astype(np.float64)
    if use_list_features:
        x = np.hstack([x, list_features(rows)])
    return x


class PlattCalibrator:
    """1-D logistic calibration: P = sigmoid(a * s + b), strictly increasing when a > 0."""

    def fit(self, s: np.ndarray, y: np.ndarray, w: np.ndarray) -> PlattCalibrator:
        lr = LogisticRegression(C=1e4)
        lr.fit(s.reshape(-1, 1), y, sample_weight=w)
        self.a_, self.b_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if self.a_ <= 0:  # a model worse than chance on held-out folds: keep order, flatten the scale
            self.a_ = 1e-3
        return self

    def predict(self, s: np.ndarray) -> np.ndarray:
        z = np.clip(self.a_ * s + self.b_, -50, 50)
        return 1.0 / (1.0 + np.exp(-z))


class IsotonicCalibrator:
    def fit(self, s: np.ndarray, y: np.ndarray, w: np.ndarray) -> IsotonicCalibrator:
        self.iso_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        self.iso_.fit(s, y, sample_weight=w)
        self.lo_, self.hi_ = float(s.min()), float(s.max())
        return self

    def predict(self, s: np.ndarray) -> np.ndarray:
        p = self.iso_.predict(s)
        # isotonic steps tie many candidates; a term far below any step keeps the model's own order
        span = (self.hi_ - self.lo_) or 1.0
        tie = 1e-6 * np.clip((s - self.lo_) / span, 0.0, 1.0)
        return np.clip(p * (1 - 1e-6) + tie, 0.0, 1.0)


class LearnedRanker(BaseEstimator):
    """A calibrated outcome model over the ranker features (the `matcher.matching.ranker.Ranker` protocol).

    Parameters
    ----------
    model : "logistic" or "boosting" (HistGradientBoostingClassifier).
    objective : "pointwise" (rows labelled by outcome) or "pairwise" (logistic on positive-minus-negative
        differences within a query; linear only).
    calibration : "sigmoid" (Platt) or "isotonic".
    eta : position-bias exponent of the propensity (1/position)^eta; 0 turns weighting off.
    ips_clip : the largest inverse-propensity weight.
    use_list_features : add each row's retrieval scores relative to its list (`list_features`).
    C : inverse regularisation of the logistic model.
    cv : folds (by query) for the out-of-fold calibration scores.
    random_state : seed for the boosting model.
    version : the name the engine reports in `model_version`; the registry sets it to the model id.

    Fitted attributes (set by training): ``estimator_`` (x -> raw score), ``calibrator_`` (raw score ->
    probability), ``n_features_in_``, ``n_rows_``, ``n_groups_``, ``n_positive_``, ``effects_``.
    """

    def __init__(
        self,
        *,
        model: Literal["logistic", "boosting"] = "logistic",
        objective: Literal["pointwise", "pairwise"] = "pointwise",
        calibration: Literal["sigmoid", "isotonic"] = "sigmoid",
        eta: float = 1.0,
        ips_clip: float = 20.0,
        use_list_features: bool = False,
        C: float = 1.0,
        cv: int = 3,
        random_state: int = 0,
        version: str = "learned",
    ) -> None:
        self.model = model
        self.objective = objective
        self.calibration = calibration
        self.eta = eta
        self.ips_clip = ips_clip
        self.use_list_features = use_list_features
        self.C = C
        self.cv = cv
        self.random_state = random_state
        self.version = version

    def _check_fitted(self, attribute: str) -> None:
        # sklearn's check_is_fitted wants a `fit` method, which only training's subclass has
        if not hasattr(self, attribute):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet")

    def _raw(self, est: Any, x: np.ndarray) -> np.ndarray:
        """The raw real-valued score of a fitted scorer (higher = more likely positive)."""
        if hasattr(est, "decision_function"):
            if self.model == "boosting":
                with one_openmp_thread():
                    return np.asarray(est.decision_function(x), dtype=np.float64)
            return np.asarray(est.decision_function(x), dtype=np.float64)
        p = np.clip(est.predict_proba(x)[:, 1], 1e-9, 1 - 1e-9)
        return np.log(p / (1 - p))

    def decision_function(self, rows: Sequence[dict[str, float | None]]) -> np.ndarray:
        self._check_fitted("estimator_")
        if not rows:
            return np.zeros(0)
        return self._raw(self.estimator_, design_matrix(rows, use_list_features=self.use_list_features))

    def score(self, rows: Sequence[dict[str, float | None]]) -> np.ndarray:
        """P(positive outcome) for each row of one served list, in [0, 1]."""
        self._check_fitted("calibrator_")
        if not rows:
            return np.zeros(0)
        return np.clip(self.calibrator_.predict(self.decision_function(rows)), 0.0, 1.0)

    def score_groups(self, rows: Sequence[dict[str, float | None]], groups: Sequence[str]) -> np.ndarray:
        """`score` applied list by list (offline evaluation over many queries at once)."""
        out = np.zeros(len(rows))
        index: dict[str, list[int]] = {}
        for i, g in enumerate(groups):
            index.setdefault(str(g), []).append(i)
        for idx in index.values():
            out[idx] = self.score([rows[i] for i in idx])
        return out
