"""Ranking metrics over a run ``{query_id: [(doc_id, score), ...]}`` and qrels ``{query_id: {doc_id: grade}}``.

Conventions (the same as trec_eval / pytrec_eval as used by BEIR):

* a run's list is ranked by score, highest first; ties keep the order in which they were given;
* nDCG@k uses the graded relevance as the gain and ``1 / log2(rank + 1)`` as the discount; the ideal ranking
  is built from the qrels (all judged documents with grade > 0, best first), not from the run;
* a document is relevant when its grade is > 0 (recall, MRR);
* the mean is taken over the queries of the qrels that have at least one relevant document; a query missing
  from the run scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["Run", "Qrels", "ndcg_at_k", "recall_at_k", "mrr_at_k", "evaluate", "per_query"]

Run = Mapping[str, Sequence[tuple[str, float]]]
Qrels = Mapping[str, Mapping[str, int]]


def _ranked(results: Sequence[tuple[str, float]], k: int) -> list[str]:
    order = sorted(range(len(results)), key=lambda i: -float(results[i][1]))  # stable: ties keep input order
    seen: set[str] = set()
    out: list[str] = []
    for i in order:
        doc_id = results[i][0]
        if doc_id in seen:  # a document counts once, at its best rank
            continue
        seen.add(doc_id)
        out.append(doc_id)
        if len(out) == k:
            break
    return out


def _dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains) if g > 0)


def _query_ndcg(ranked: list[str], rel: Mapping[str, int], k: int) -> float:
    ideal = _dcg(sorted((g for g in rel.values() if g > 0), reverse=True)[:k])
    if ideal <= 0:
        return 0.0
    return _dcg([max(rel.get(d, 0), 0) for d in ranked[:k]]) / ideal


def _query_recall(ranked: list[str], rel: Mapping[str, int], k: int) -> float:
    relevant = {d for d, g in rel.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def _query_rr(ranked: list[str], rel: Mapping[str, int], k: int) -> float:
    for rank, d in enumerate(ranked[:k], 1):
        if rel.get(d, 0) > 0:
            return 1.0 / rank
    return 0.0


_METRICS = {"ndcg": _query_ndcg, "recall": _query_recall, "mrr": _query_rr}


def per_query(run: Run, qrels: Qrels, metric: str, k: int) -> dict[str, float]:
    """One metric for each judged query that has a relevant document."""
    if k <= 0:
        raise ValueError("k must be positive")
    fn = _METRICS[metric]
    out: dict[str, float] = {}
    for qid, rel in qrels.items():
        if not any(g > 0 for g in rel.values()):
            continue
        out[qid] = fn(_ranked(run.get(qid, ()), k), rel, k)
    return out


def _mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values) if values else 0.0


def ndcg_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    return _mean(per_query(run, qrels, "ndcg", k))


def recall_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    return _mean(per_query(run, qrels, "recall", k))


def mrr_at_k(run: Run, qrels: Qrels, k: int = 10) -> float:
    return _mean(per_query(run, qrels, "mrr", k))


def evaluate(run: Run, qrels: Qrels, ks: Sequence[int] = (10,)) -> dict[str, float]:
    """``{"ndcg@10": ..., "recall@10": ..., "mrr@10": ...}`` for each k."""
    out: dict[str, float] = {}
    for k in ks:
        out[f"ndcg@{k}"] = ndcg_at_k(run, qrels, k)
        out[f"recall@{k}"] = recall_at_k(run, qrels, k)
        out[f"mrr@{k}"] = mrr_at_k(run, qrels, k)
    return out
