"""Held-out evaluation of a candidate ranker against the one in service, and the promotion rule.

Queries (served lists) are split, never rows: a query's candidates all land on one side, so no query is both
trained on and scored. The score is nDCG@10 of each ranker's ordering of the held-out candidates against
every known relevant item; the difference is summarised by a paired bootstrap over queries, and a candidate
is promoted only when the lower bound of that interval is above zero."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matcher.matching.ranker import Ranker
from training.data.labels import LabelledRows
from training.evaluation.metrics import per_query
from training.rankers.estimator import LearnedRanker

MIN_GROUPS = 20  # fewer held-out lists than this cannot tell two rankers apart
MIN_POSITIVES = 10


class NotEnoughData(ValueError):
    """Training or evaluation was refused; the message says what is missing."""


def all_groups(data: LabelledRows) -> list[str]:
    return sorted(set(data.groups) | set(data.relevant))


def grouped_split(
    groups: Sequence[str], *, test_size: float = 0.5, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Distinct groups shuffled and cut in two: (train groups, test groups)."""
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = [uniq[i] for i in rng.permutation(len(uniq))]
    n_test = max(1, int(round(len(uniq) * test_size))) if len(uniq) > 1 else 0
    return sorted(order[n_test:]), sorted(order[:n_test])


def grouped_kfold(
    groups: Sequence[str], *, k: int = 5, seed: int = 0
) -> Iterator[tuple[list[str], list[str]]]:
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    folds = np.array_split(np.array([uniq[i] for i in rng.permutation(len(uniq))], dtype=object), k)
    for i in range(k):
        test = sorted(str(g) for g in folds[i])
        train = sorted(str(g) for j, f in enumerate(folds) if j != i for g in f)
        yield train, test


def per_query_ndcg(
    ranker: Ranker,
    data: LabelledRows,
    groups: Sequence[str],
    *,
    k: int = 10,
    eta: float = 0.0,
    clip: float = 20.0,
) -> dict[str, float]:
    """nDCG@k of `ranker`'s order of each group's candidates (groups without a relevant item are skipped).

    With ``eta > 0`` (labels from users who saw a ranked list) each positive's gain is weighted by the inverse
    of its propensity of having been seen where it was shown, ``(1 / position)^-eta`` clipped at ``clip``:
    the inverse-propensity estimate of nDCG. Without it, positives cluster where the serving ranker put them,
    and any other order scores worse on the log than it would for the users."""
    want = set(groups)
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(data.groups):
        if g in want:
            by_group.setdefault(g, []).append(i)
    run: dict[str, list[tuple[str, float]]] = {}
    for g, idx in by_group.items():
        scores = np.asarray(ranker.score([data.rows[i] for i in idx]), dtype=np.float64)
        # stable order: ties keep the served order, so a constant ranker is not rewarded by id order
        order = np.lexsort((np.arange(len(idx)), -scores))
        n = len(idx)
        run[g] = [(data.items[idx[j]], float(n - r)) for r, j in enumerate(order)]
    qrels: dict[str, dict[str, float]] = {g: dict(data.relevant[g]) for g in want if data.relevant.get(g)}
    if eta > 0:
        for i, g in enumerate(data.groups):
            rel = qrels.get(g)
            if rel is not None and data.items[i] in rel and data.labels[i] > 0:
                seen = max(1, int(data.positions[i])) ** (-eta)
                rel[data.items[i]] = data.labels[i] * min(clip, 1.0 / seen)
    return per_query(run, qrels, "ndcg", k)


def bootstrap_ci(
    diffs: Sequence[float], *, n_boot: int = 2000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lower, upper) of the mean paired difference, percentile bootstrap over queries."""
    d = np.asarray(diffs, dtype=np.float64)
    if len(d) == 0:
        return 0.0, 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2))


@dataclass
class Comparison:
    queries: int
    candidate: float
    incumbent: float
    diff: float
    ci_low: float
    ci_high: float
    promote: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "queries": self.queries,
            "ndcg@10_candidate": round(self.candidate, 4),
            "ndcg@10_incumbent": round(self.incumbent, 4),
            "diff": round(self.diff, 4),
            "ci95": [round(self.ci_low, 4), round(self.ci_high, 4)],
            "promote": self.promote,
        }

    def manifest_metrics(self) -> dict[str, Any]:
        """The registry manifest's `metrics` for the candidate this comparison evaluated."""
        return {
            "ndcg@10": round(self.candidate, 4),
            "ndcg@10_incumbent": round(self.incumbent, 4),
            "queries": self.queries,
        }

    def manifest_ci(self) -> dict[str, Any]:
        """The registry manifest's `ci`: the paired bootstrap interval of the gain."""
        return {
            "diff": round(self.diff, 4),
            "low": round(self.ci_low, 4),
            "high": round(self.ci_high, 4),
            "level": 0.95,
        }


def should_promote(ci_low: float) -> bool:
    """The promotion rule: the candidate must be better with 95 % confidence, not merely on average."""
    return ci_low > 0


def compare(
    candidate: Ranker,
    incumbent: Ranker,
    data: LabelledRows,
    groups: Sequence[str],
    *,
    seed: int = 0,
    eta: float = 0.0,
) -> Comparison:
    """Both rankers on the held-out groups; ``eta > 0`` for logged feedback (see `per_query_ndcg`)."""
    a = per_query_ndcg(candidate, data, groups, eta=eta)
    b = per_query_ndcg(incumbent, data, groups, eta=eta)
    return compare_scores(a, b, sorted(set(b) | set(data.relevant) & set(groups)), seed=seed)


def compare_scores(
    a: dict[str, float], b: dict[str, float], keys: Sequence[str], *, seed: int = 0
) -> Comparison:
    """Candidate scores `a` against incumbent scores `b` over the same queries (a query missing from one
    side scores 0 there), the paired bootstrap interval of the gain and the promotion verdict."""
    va = np.array([a.get(q, 0.0) for q in keys])
    vb = np.array([b.get(q, 0.0) for q in keys])
    mean, lo, hi = bootstrap_ci(va - vb, seed=seed)
    return Comparison(
        queries=len(keys),
        candidate=float(va.mean()) if len(keys) else 0.0,
        incumbent=float(vb.mean()) if len(keys) else 0.0,
        diff=mean,
        ci_low=lo,
        ci_high=hi,
        promote=bool(len(keys)) and should_promote(lo),
    )


def check_enough(
    data: LabelledRows, *, min_groups: int = MIN_GROUPS, min_positives: int = MIN_POSITIVES
) -> None:
    groups_with_pos = len({g for g, y in zip(data.groups, data.labels, strict=True) if y > 0})
    if data.n_positive < min_positives or groups_with_pos < min_groups:
        raise NotEnoughData(
            f"too little data to train a ranker: {data.n_positive} positive outcomes in {groups_with_pos} "
            f"match lists (need at least {min_positives} positives in {min_groups} lists, half of which are "
            "held out for the evaluation); collect more feedback or pass --qrels with a labelled set"
        )


def train_and_compare(
    data: LabelledRows,
    incumbent: Ranker,
    *,
    params: dict[str, Any] | None = None,
    test_size: float = 0.5,
    seed: int = 0,
    min_groups: int = MIN_GROUPS,
    min_positives: int = MIN_POSITIVES,
    unit: Callable[[str], str] | None = None,
) -> tuple[LearnedRanker, Comparison, dict[str, Any]]:
    """Fit a LearnedRanker on the training queries, compare it with `incumbent` on the held-out ones.

    `unit` maps a group to the unit that is split (default: `data.units`, else the group itself); lists served
    for the same query under different requests must land on one side.
    Returns (fitted ranker, comparison, split summary). Raises NotEnoughData with the reason."""
    check_enough(data, min_groups=min_groups, min_positives=min_positives)
    groups = all_groups(data)
    unit = unit or (lambda g: data.units.get(g, g))
    train_u, _ = grouped_split([unit(g) for g in groups], test_size=test_size, seed=seed)
    keep = set(train_u)
    train_g = [g for g in groups if unit(g) in keep]
    test_g = [g for g in groups if unit(g) not in keep]
    train = data.subset(train_g)
    if train.n_positive == 0 or train.n_positive == len(train):
        raise NotEnoughData(
            "the training half has no positive (or no negative) outcome; collect more feedback"
        )
    ranker = LearnedRanker(**(params or {}), random_state=seed)
    ranker.fit(train.rows, train.labels, groups=train.groups, positions=train.positions)
    # labels from a served list are position-biased; benchmark qrels are not
    eta = 0.0 if data.source.get("kind") == "qrels" else float(ranker.eta)
    result = compare(ranker, incumbent, data, test_g, seed=seed, eta=eta)
    split = {
        "train_queries": len(train_g),
        "test_queries": len(test_g),
        "train_rows": len(train),
        "seed": seed,
    }
    return ranker, result, split
