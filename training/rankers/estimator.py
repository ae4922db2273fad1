"""LearnedRanker: a scikit-learn model over `feature_matrix`, calibrated so that its score is P(positive outcome).

Fitting only: the fitted model is `matcher.models.learned.LearnedRanker` (what serving loads), which the
`LearnedRanker` here extends with `fit`; the registry swaps it into the engine.

Choices (measured with bench/ranker_eval.py, see docs/learning.md):

* pointwise logistic regression over `feature_matrix` by default: on csl-need2doc-dev it had the best
  cross-validated gain inside the training half (+0.017 nDCG@10 vs +0.014 with list features, +0.002 for
  gradient boosting, -0.011 pairwise); with one known relevant document per query the richer models overfit
  the few positives, and the linear one is stable and cheap to serve;
* list features (optional): each row's retrieval scores relative to the best candidate of its list
  (`score(rows)` always receives one served list);
* calibration is fitted on out-of-fold scores split *by query* (GroupKFold), so a calibrated 0.3 means that
  about 30 % of such matches led to a positive outcome; Platt scaling by default (strictly monotone, so the
  ranking is the model's own); isotonic on request, with a vanishing strictly monotone term to break its ties;
* position bias: a positive at rank p was seen with probability ~ (1/p)^eta, so each row is weighted by
  1 / propensity (clipped) — clicks lower in the list count for more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from matcher.matching.fit import FIT_FEATURES
from matcher.matching.ranker import FEATURE_NAMES
from matcher.models import learned
from matcher.models.learned import (
    LIST_FEATURES,
    IsotonicCalibrator,
    PlattCalibrator,
    design_matrix,
    one_openmp_thread,
)

# what each column of the design matrix means, for `LearnedRanker.effects_` (English, Chinese)
FEATURE_LABELS: dict[str, tuple[str, str]] = {
    "dense": ("semantic similarity of the texts", "文本语义相似度"),
    "lexical": ("shared words and phrases", "共同词语"),
    "relevance": ("text relevance (the two fused)", "文本相关度（融合）"),
    "industry": ("industry fit", "行业匹配"),
    "region": ("same region", "同一地区"),
    "stage": ("fund stage fits the enterprise", "基金阶段匹配"),
    "amount": ("ticket or budget covers the amount", "额度/预算覆盖所需金额"),
    "trl": ("technology readiness (TRL) fits", "技术成熟度匹配"),
    "recency": ("recently updated", "近期更新"),
    "deadline": ("time left before the deadline", "距截止日期的时间"),
}


def column_names(use_list_features: bool) -> list[str]:
    """The design matrix's columns: features, then an 'unknown' indicator per fit feature, then list features."""
    names = list(FEATURE_NAMES) + [f"{n}_unknown" for n in FIT_FEATURES]
    return names + list(LIST_FEATURES) if use_list_features else names


def _label(column: str) -> tuple[str, str]:
    for suffix, en, zh in (
        ("_unknown", "not stated: ", "未说明："),
        ("_gap", "behind the list's best: ", "与列表最佳之差："),
    ):
        if column.endswith(suffix):
            base_en, base_zh = FEATURE_LABELS.get(column[: -len(suffix)], (column, column))
            return en + base_en, zh + base_zh
    if column.endswith("_rank"):
        base_en, base_zh = FEATURE_LABELS.get(column[:-5], (column, column))
        return "rank in the list by " + base_en, "列表内排名：" + base_zh
    return FEATURE_LABELS.get(column, (column, column))


def propensity(positions: np.ndarray, eta: float = 1.0) -> np.ndarray:
    """P(seen | position) under the position-based model: (1 / position)^eta, position 1-based."""
    pos = np.maximum(np.asarray(positions, dtype=np.float64), 1.0)
    return pos ** (-eta)


def ips_weights(positions: np.ndarray | None, labels: np.ndarray, *, eta: float, clip: float) -> np.ndarray:
    """Inverse-propensity weights for positives (negatives keep weight 1), clipped to bound the variance."""
    w = np.ones(len(labels), dtype=np.float64)
    if positions is None or eta <= 0:
        return w
    inv = 1.0 / propensity(positions, eta)
    pos = labels > 0
    w[pos] = np.minimum(inv[pos], clip)
    return w


def grouped_design(
    rows: Sequence[dict[str, float | None]], groups: Sequence[str], *, use_list_features: bool
) -> np.ndarray:
    """The design matrix with list features computed within each group (one served list per group)."""
    if not use_list_features:
        return design_matrix(rows, use_list_features=False)
    x = np.zeros((len(rows), len(FEATURE_NAMES) + len(FIT_FEATURES) + len(LIST_FEATURES)))
    index: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        index.setdefault(g, []).append(i)
    for idx in index.values():
        x[idx] = design_matrix([rows[i] for i in idx], use_list_features=True)
    return x


class LearnedRanker(learned.LearnedRanker):
    """`matcher.models.learned.LearnedRanker` with its fitting; the parameters are documented there.

    A fitted one pickles as the serving class (`__reduce_ex__`), so registry artefacts never name training."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        # rebuilt as the serving class from the same state (BaseEstimator.__setstate__ applies it)
        return (object.__new__, (learned.LearnedRanker,), self.__getstate__())

    # ------------------------------------------------------------------ fitting
    def _base(self) -> Pipeline | HistGradientBoostingClassifier:
        if self.model == "logistic":
            return make_pipeline(StandardScaler(), LogisticRegression(C=self.C, max_iter=2000))
        if self.model == "boosting":
            return HistGradientBoostingClassifier(
                max_iter=100,
                learning_rate=0.05,
                max_leaf_nodes=15,
                l2_regularization=1.0,
                random_state=self.random_state,
            )
        raise ValueError(f"model: unknown {self.model!r} (logistic, boosting)")

    def _fit_raw(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, groups: np.ndarray) -> Any:
        """A fitted scorer: x -> raw real-valued score (higher = more likely positive)."""
        if self.objective == "pointwise":
            est = clone(self._base())
            if self.model == "logistic":
                est.fit(x, y, logisticregression__sample_weight=w)
            else:
                # small tables: OpenMP threads only contend with the serving process for cores
                with one_openmp_thread():
                    est.fit(x, y, sample_weight=w)
            return est
        if self.objective != "pairwise":
            raise ValueError(f"objective: unknown {self.objective!r} (pointwise, pairwise)")
        if self.model != "logistic":
            raise ValueError("objective='pairwise' is implemented for model='logistic' only")
        scaler = StandardScaler().fit(x)
        xs = scaler.transform(x)
        diffs, pw = [], []
        for g in np.unique(groups):
            idx = np.flatnonzero(groups == g)
            pos, neg = idx[y[idx] > 0], idx[y[idx] == 0]
            for p in pos:
                diffs.append(xs[p] - xs[neg])
                pw.append(np.full(len(neg), w[p] / max(len(neg), 1)))
        if not diffs:
            raise ValueError("pairwise training needs at least one query with a positive and a negative")
        d = np.vstack(diffs)
        dw = np.concatenate(pw)
        xd = np.vstack([d, -d])
        yd = np.concatenate([np.ones(len(d)), np.zeros(len(d))])
        lr = LogisticRegression(C=self.C, fit_intercept=False, max_iter=2000)
        lr.fit(xd, yd, sample_weight=np.concatenate([dw, dw]))
        return make_pipeline(scaler, lr)

    def fit(
        self,
        rows: Sequence[dict[str, float | None]],
        y: Sequence[int] | np.ndarray,
        *,
        groups: Sequence[str],
        positions: Sequence[int] | np.ndarray | None = None,
    ) -> LearnedRanker:
        """rows: feature dicts; y: 1 for a positive outcome; groups: the served list (request or query) of
        each row; positions: the rank each row was shown at (for inverse-propensity weighting)."""
        y_arr = (np.asarray(y) > 0).astype(int)
        g_arr = np.asarray([str(g) for g in groups])
        if not (len(rows) == len(y_arr) == len(g_arr)):
            raise ValueError("rows, y and groups must have the same length")
        if y_arr.sum() == 0 or y_arr.sum() == len(y_arr):
            raise ValueError("training needs both positive and negative outcomes")
        pos_arr = None if positions is None else np.asarray(positions, dtype=np.float64)
        w = ips_weights(pos_arr, y_arr, eta=self.eta, clip=self.ips_clip)
        x = grouped_design(rows, g_arr, use_list_features=self.use_list_features)

        # out-of-fold raw scores, split by query, for an honest calibration
        n_groups = len(np.unique(g_arr))
        n_splits = min(self.cv, n_groups)
        oof = np.full(len(y_arr), np.nan)
        if n_splits >= 2:
            for tr, te in GroupKFold(n_splits=n_splits).split(x, y_arr, g_arr):
                if y_arr[tr].min() == y_arr[tr].max():
                    continue
                est = self._fit_raw(x[tr], y_arr[tr], w[tr], g_arr[tr])
                oof[te] = self._raw(est, x[te])
        self.estimator_ = self._fit_raw(x, y_arr, w, g_arr)
        ok = ~np.isnan(oof)
        if ok.sum() < 2 or y_arr[ok].min() == y_arr[ok].max():  # too few groups: calibrate in-sample
            oof, ok = self._raw(self.estimator_, x), np.ones(len(y_arr), dtype=bool)
        cal = PlattCalibrator() if self.calibration == "sigmoid" else IsotonicCalibrator()
        if self.calibration not in ("sigmoid", "isotonic"):
            raise ValueError(f"calibration: unknown {self.calibration!r} (sigmoid, isotonic)")
        # calibrate on the unweighted outcome rate among the rows shown, after IPS re-weighting of positives
        self.calibrator_ = cal.fit(oof[ok], y_arr[ok], w[ok])
        self.n_features_in_ = x.shape[1]
        self.n_rows_ = int(len(y_arr))
        self.n_groups_ = int(n_groups)
        self.n_positive_ = int(y_arr.sum())
        self.effects_ = self._effects(x, y_arr)
        return self

    def _effects(self, x: np.ndarray, y: np.ndarray) -> list[dict[str, object]]:
        """What the model learned, strongest first: for the linear models, the change in log-odds of a
        positive outcome per standard deviation of each column (signed); for boosting, how much the training
        AUC drops when the column is shuffled (unsigned). Columns that never vary are left out."""
        names = column_names(self.use_list_features)
        est = self.estimator_
        if self.model == "logistic":
            coef = np.asarray(est[-1].coef_).reshape(-1)
            values = {n: float(c) for n, c in zip(names, coef, strict=True)}
            kind = (
                "log-odds of preferring one match over another, per standard deviation"
                if self.objective == "pairwise"
                else "log-odds of a positive outcome per standard deviation"
            )
        else:
            from sklearn.inspection import permutation_importance

            with one_openmp_thread():
                imp = permutation_importance(
                    est, x, y, scoring="roc_auc", n_repeats=3, random_state=self.random_state
                )
            values = {n: float(v) for n, v in zip(names, imp.importances_mean, strict=True)}
            kind = "training AUC lost when shuffled"
        varies = x.std(axis=0) > 0
        out = []
        for j, name in enumerate(names):
            if not varies[j]:
                continue
            en, zh = _label(name)
            out.append(
                {"feature": name, "weight": round(values[name], 4), "measure": kind, "en": en, "zh": zh}
            )
        out.sort(key=lambda e: -abs(float(e["weight"])))  # type: ignore[arg-type]
        return out
