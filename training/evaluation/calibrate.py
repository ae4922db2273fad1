"""Fusion weights and score calibration per query language, fitted on labelled sets, reported held out by query.

For each set, every query runs through the production match path (`match_eval`) with both indexes searched, and
each candidate of its pool keeps its two similarities (dense cosine, BM25 over the query's upper bound) and its
label. Then, per language ("zh": queries with Chinese; "latin": the others, English needs against Chinese or
English records alike):

* the dense weight ``w`` is the one with the best mean nDCG@10 of ``w * dense + (1 - w) * lexical``;
* the relevance is ``sigmoid((fused - mid) / scale)``, ``mid`` and ``scale`` from a logistic regression of the
  label on the fused similarity (Platt scaling): the probability that the candidate is a judged relevant one.

`cross_validate` chooses both on 4 folds of queries and scores the 5th (nDCG@10 of the fused ranking, and the
reliability of the relevance: predicted against observed rate per bin), so every figure it reports is held out.
The labelled sets have one known relevant document per query (CSL) or graded human judgements (Cranfield); on the
CSL sets other relevant documents are unlabelled, so the probabilities are conservative.
"""

from __future__ import annotations

import json
import random
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from matcher.matching.retrieval import Relevance

__all__ = ["Fusion", "Pool", "collect", "cross_validate", "fit", "language_of", "write_calibration"]

WEIGHTS = tuple(round(0.05 * i, 2) for i in range(21))
BINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0001)


@dataclass(frozen=True)
class Fusion:
    """One language's fusion: the dense weight and the logistic calibration of the fused similarity."""

    w: float
    mid: float
    scale: float

    def relevance(self, dense: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        fused = self.w * np.maximum(dense, 0.0) + (1 - self.w) * lexical
        return 1.0 / (1.0 + np.exp(-np.clip((fused - self.mid) / self.scale, -50, 50)))


@dataclass
class Pool:
    """One query's candidates: similarities and labels (graded relevance, 0 = not judged relevant)."""

    qid: str
    language: str
    dense: np.ndarray
    lexical: np.ndarray
    labels: np.ndarray
    n_relevant: int  # judged relevant documents of the query, found or not (nDCG's ideal)


# the language key serving calibrates by
language_of = Relevance.language_of


def collect(engine, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
            ids: Mapping[int, str], *, k: int = 100, tier: str | None = None) -> list[Pool]:  # fmt: skip
    """Each query's top ``k`` through the match path at dense weight 0.5 (both indexes searched); with ``tier``,
    only the candidates whose dense similarity comes from that tier (the teacher tier's calibration is fitted
    on the candidates it scores)."""
    from training.evaluation.match_eval import match_text

    out = []
    for qid, text in queries.items():
        rel = {d: g for d, g in qrels.get(qid, {}).items() if g > 0}
        if not rel:
            continue
        cands = match_text(engine, text, k=k, dense_weight=0.5).candidates
        if tier is not None:
            cands = [c for c in cands if c.tier == tier]
        out.append(
            Pool(
                qid, language_of(text),
                np.array([c.dense for c in cands], np.float64),
                np.array([c.lexical for c in cands], np.float64),
                np.array([rel.get(ids[c.id], 0) for c in cands], np.float64),
                len(rel),
            )
        )  # fmt: skip
    return out


def _ndcg(pool: Pool, w: float, k: int = 10) -> float:
    if not len(pool.labels):
        return 0.0
    fused = w * np.maximum(pool.dense, 0.0) + (1 - w) * pool.lexical
    order = np.argsort(-fused, kind="stable")[:k]
    gains = (2.0 ** pool.labels[order] - 1) / np.log2(np.arange(2, len(order) + 2))
    ideal_labels = np.sort(pool.labels)[::-1][:k]
    ideal_labels = np.concatenate(
        [ideal_labels, np.ones(max(0, min(k, pool.n_relevant) - len(ideal_labels)))]
    )
    ideal = ((2.0 ** ideal_labels[:k] - 1) / np.log2(np.arange(2, min(k, len(ideal_labels)) + 2))).sum()
    return float(gains.sum() / ideal) if ideal > 0 else 0.0


def _best_weight(pools: Sequence[Pool]) -> float:
    best, best_w = -1.0, 0.0
    for w in WEIGHTS:
        score = statistics.fmean(_ndcg(p, w) for p in pools)
        if score > best + 1e-12:
            best, best_w = score, w
    return best_w


def _platt(pools: Sequence[Pool], w: float) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([w * np.maximum(p.dense, 0.0) + (1 - w) * p.lexical for p in pools])
    y = np.concatenate([(p.labels > 0).astype(int) for p in pools])
    if len(set(y.tolist())) < 2:
        return 0.5, 0.1
    lr = LogisticRegression(C=100.0, max_iter=1000).fit(x.reshape(-1, 1), y)
    a, b = float(lr.coef_[0][0]), float(lr.intercept_[0])
    if a <= 1e-6:  # similarity that does not predict relevance: a flat, low probability
        return 1.0, 1.0
    return -b / a, 1.0 / a


def fit(pools: Sequence[Pool]) -> dict[str, Fusion]:
    """Per language: the weight with the best nDCG@10, then the Platt calibration at that weight."""
    out = {}
    for lang in sorted({p.language for p in pools}):
        mine = [p for p in pools if p.language == lang]
        w = _best_weight(mine)
        mid, scale = _platt(mine, w)
        out[lang] = Fusion(w, round(mid, 5), round(scale, 5))
    return out


def _reliability(pairs: Iterable[tuple[float, float]]) -> list[dict[str, Any]]:
    rows = []
    pairs = list(pairs)
    for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
        inside = [(p, y) for p, y in pairs if lo <= p < hi]
        if inside:
            rows.append({
                "bin": f"{lo:.2f}-{min(hi, 1.0):.2f}", "candidates": len(inside),
                "predicted": round(statistics.fmean(p for p, _ in inside), 4),
                "observed": round(statistics.fmean(y for _, y in inside), 4),
            })  # fmt: skip
    return rows


def cross_validate(pools: Sequence[Pool], folds: int = 5, seed: int = 13) -> dict[str, Any]:
    """Held-out figures per language and set: weight and calibration fitted on the other folds of queries."""
    qids = sorted({p.qid for p in pools})
    random.Random(seed).shuffle(qids)
    fold_of = {q: i % folds for i, q in enumerate(qids)}
    ndcg: dict[str, list[float]] = {}
    lexical: dict[str, list[float]] = {}
    per_set: dict[str, dict[str, list[tuple[float, float]]]] = {}
    pairs: dict[str, list[tuple[float, float]]] = {}
    chosen: dict[str, list[float]] = {}
    for f in range(folds):
        params = fit([p for p in pools if fold_of[p.qid] != f])
        for p in (p for p in pools if fold_of[p.qid] == f):
            fusion = params.get(p.language)
            if fusion is None:
                continue
            ndcg.setdefault(p.language, []).append(_ndcg(p, fusion.w))
            lexical.setdefault(p.language, []).append(_ndcg(p, 0.0))
            name = p.qid.rsplit("/", 1)[0] if "/" in p.qid else ""
            per_set.setdefault(p.language, {}).setdefault(name, []).append(
                (ndcg[p.language][-1], lexical[p.language][-1])
            )
            rel = fusion.relevance(p.dense, p.lexical)
            labels = (p.labels > 0).astype(float).tolist()
            pairs.setdefault(p.language, []).extend(zip(rel.tolist(), labels, strict=True))
        for lang, fusion in params.items():
            chosen.setdefault(lang, []).append(fusion.w)
    out = {}
    for lang in sorted(ndcg):
        ps = pairs[lang]
        brier = statistics.fmean((p - y) ** 2 for p, y in ps)
        out[lang] = {
            "queries": len(ndcg[lang]),
            "ndcg@10_fused_heldout": round(statistics.fmean(ndcg[lang]), 4),
            "ndcg@10_lexical": round(statistics.fmean(lexical[lang]), 4),
            "fold_weights": chosen[lang],
            "by_set": {
                name: {
                    "queries": len(rows),
                    "ndcg@10_fused_heldout": round(statistics.fmean(f for f, _ in rows), 4),
                    "ndcg@10_lexical": round(statistics.fmean(x for _, x in rows), 4),
                }
                for name, rows in sorted(per_set[lang].items())
            },
            "brier": round(brier, 5),
            "reliability": _reliability(ps),
        }
    return out


def write_calibration(path: str | Path, params: Mapping[str, Fusion], meta: Mapping[str, Any]) -> Path:
    path = Path(path)
    body = {"languages": {k: asdict(v) for k, v in params.items()}, **meta}
    path.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path
