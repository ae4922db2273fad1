"""Would richer text features let a learned ranker beat the transparent default on csl-need2doc-dev?

The service's rankers see three text scores (dense, lexical, fused relevance) and the fit features. This
benchmark adds the classic learning-to-rank text features for each candidate of the production match path
(top 100), and cross-validates rankers over them by query (5 folds, every query held out once):

* ``lex_words``, ``lex_bigrams``: the lexical score split into its word and character-bigram halves, each
  divided by the query's own upper bound;
* ``cov_words``, ``cov_bigrams``: the idf-weighted share of the query's words / bigrams the document holds;
* ``title_words``, ``title_bigrams``: the same for the title alone;
* ``sent_words``, ``sent_bigrams``: the best single sentence's coverage (a need often restates one sentence);
* ``doc_len``: log of the document's length;
* ``soft``: MaxSim soft matching over the static encoder's word vectors (each query word's best cosine to a
  document word, idf-weighted), when the encoder is the project's static one;
* ``list``: each of lexical, dense and best-sentence relative to the list's best, and its rank in the list.

Models: pointwise logistic regression, gradient boosting, and a listwise linear model (softmax cross-entropy
over each query's list, the natural objective with one relevant document per query). Prints one JSON object:
the default's nDCG@10, and per feature set and model the cross-validated nDCG@10 with the paired bootstrap
interval of its gain over the default.

    python -m bench.ranker_features --encoder ENCODER_DIR > ranker_features.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.ranker_eval import add_dataset_args, bench_encoder

_TEXT = ["dense", "lexical"]
_SPLIT = ["lex_words", "lex_bigrams"]
_COVERAGE = ["cov_words", "cov_bigrams"]
_TITLE = ["title_words", "title_bigrams"]
_REST = ["sent_words", "sent_bigrams", "doc_len", "soft"]
SETS: dict[str, list[str]] = {
    "service": [*_TEXT, "relevance"],
    "split": _TEXT + _SPLIT,
    "coverage": _TEXT + _SPLIT + _COVERAGE,
    "coverage+title": _TEXT + _SPLIT + _COVERAGE + _TITLE,
    "soft": [*_TEXT, "soft"],
    "all": _TEXT + _SPLIT + _COVERAGE + _TITLE + _REST,
    "all+list": [*_TEXT, *_SPLIT, *_COVERAGE, *_TITLE, *_REST, "list"],
}
_SENTENCE = re.compile(r"[。；;！!？?，,.]")


def collect(dataset: str, split: str, encoder_dir: Path) -> list[dict[str, Any]]:
    """Each judged query's top 100 from the production match path, with the extra features per candidate."""
    from embeddings.encoders.sentence import load_encoder
    from embeddings.text import BIGRAM_PREFIX, lexical_terms, tokenize
    from training.data.beir import load_beir
    from training.evaluation.match_eval import match_text, temporary_engine

    corpus, queries, qrels = load_beir(dataset, split)
    encoder = load_encoder(str(encoder_dir))
    soft = _soft_matcher(encoder)
    terms_of: dict[str, set[str]] = {}

    def terms(text: str) -> set[str]:
        t = terms_of.get(text)
        if t is None:
            t = terms_of[text] = set(lexical_terms(text))
        return t

    out = []
    with temporary_engine(corpus, encoder, prefix="parkmatch-features-") as (engine, ids):
        pair = engine.supply
        for qid, text in queries.items():
            rel = {d for d, g in qrels.get(qid, {}).items() if g > 0}
            if not rel:
                continue
            outcome = match_text(engine, text, k=100)
            qterms = lexical_terms(text, tokenize(text))
            words = [t for t in qterms if not t.startswith(BIGRAM_PREFIX)]
            bigrams = [t for t in qterms if t.startswith(BIGRAM_PREFIX)]
            idf = {t: s["idf"] for t, s in pair.lexical.term_stats(qterms).items()}
            cids = [c.id for c in outcome.candidates]
            lw = pair.lexical.score_ids(words, cids) / (pair.upper_bound(words) or 1.0)
            lb = pair.lexical.score_ids(bigrams, cids) / (pair.upper_bound(bigrams) or 1.0)
            qsoft = soft(text) if soft else None
            rows = []
            for c, a, b in zip(outcome.candidates, lw, lb, strict=True):
                doc = corpus[ids[c.id]]
                title, body = doc.get("title") or "", doc.get("text") or ""
                all_terms, title_terms = terms(title + "\n" + body), terms(title)
                sentences = [s for s in _SENTENCE.split(body) if s.strip()] + [title]
                sent_terms = [terms(s) for s in sentences]
                rows.append(
                    {
                        "doc": ids[c.id],
                        "label": int(ids[c.id] in rel),
                        "dense": c.dense,
                        "lexical": c.lexical,
                        "relevance": c.relevance,
                        "lex_words": float(a),
                        "lex_bigrams": float(b),
                        "cov_words": _coverage(words, all_terms, idf),
                        "cov_bigrams": _coverage(bigrams, all_terms, idf),
                        "title_words": _coverage(words, title_terms, idf),
                        "title_bigrams": _coverage(bigrams, title_terms, idf),
                        "sent_words": max(_coverage(words, s, idf) for s in sent_terms),
                        "sent_bigrams": max(_coverage(bigrams, s, idf) for s in sent_terms),
                        "doc_len": math.log1p(len(title) + len(body)),
                        "soft": qsoft(title + "。" + body) if qsoft else 0.0,
                    }
                )
            out.append({"query": qid, "rows": rows, "relevant": sorted(rel)})
    return out


def _coverage(query_terms: list[str], doc_terms: set[str], idf: dict[str, float]) -> float:
    total = sum(idf.get(t, 0.0) for t in query_terms)
    if total <= 0:
        return 0.0
    return sum(idf.get(t, 0.0) for t in query_terms if t in doc_terms) / total


def _soft_matcher(encoder: Any) -> Callable[[str], Callable[[str], float]] | None:
    """MaxSim over the static encoder's unit word vectors, weighted by the vectors' norms (their learnt
    importance); None for an encoder that is not the project's static one."""
    from embeddings.encoders.static_zh import StaticZhEmbedding, text_tokens

    model = getattr(encoder, "model", None)
    module = model[0] if model is not None and len(model) else None
    if not isinstance(module, StaticZhEmbedding):
        return None
    weights = module.embedding.weight.detach().cpu().numpy()
    norms = np.linalg.norm(weights, axis=1)
    unit = weights / (norms[:, None] + 1e-9)

    def ids(text: str) -> list[int]:
        return module.token_ids(text_tokens(text))

    def for_query(text: str) -> Callable[[str], float]:
        q = ids(text)
        if not q:
            return lambda doc: 0.0
        qv, qw = unit[q], norms[q]

        def score(doc: str) -> float:
            d = ids(doc)
            if not d:
                return 0.0
            best = (qv @ unit[d].T).max(axis=1)
            return float((best * qw).sum() / qw.sum())

        return score

    return for_query


# ---------------------------------------------------------------- models


def design(rows: list[dict[str, Any]], names: list[str]) -> np.ndarray:
    cols = []
    for name in names:
        if name != "list":
            cols.append(np.array([r[name] for r in rows], dtype=np.float64))
            continue
        for f in ("lexical", "dense", "sent_bigrams"):
            v = np.array([r[f] for r in rows], dtype=np.float64)
            rank = np.empty(len(v))
            rank[np.argsort(-v, kind="stable")] = np.arange(len(v))
            cols += [v - v.max(), np.log1p(rank)]
    return np.column_stack(cols)


def fit_pointwise(queries: list[dict[str, Any]], names: list[str], model: str, seed: int) -> Callable:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.vstack([design(q["rows"], names) for q in queries])
    y = np.concatenate([[r["label"] for r in q["rows"]] for q in queries])
    if model == "logistic":
        est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    else:
        est = HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0, random_state=seed
        )
    est.fit(x, y)
    return lambda rows: est.predict_proba(design(rows, names))[:, 1]


def fit_listwise(queries: list[dict[str, Any]], names: list[str], l2: float = 1.0) -> Callable:
    """A linear scorer trained with softmax cross-entropy over each query's list (ListNet with one relevant)."""
    from scipy.optimize import minimize

    lists = [(design(q["rows"], names), np.array([r["label"] for r in q["rows"]], float)) for q in queries]
    lists = [(x, y) for x, y in lists if y.sum() > 0]
    stacked = np.vstack([x for x, _ in lists])
    mu, sd = stacked.mean(0), stacked.std(0) + 1e-9
    lists = [((x - mu) / sd, y / y.sum()) for x, y in lists]
    n = len(lists)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, grad = 0.0, np.zeros_like(w)
        for x, t in lists:
            s = x @ w
            s -= s.max()
            p = np.exp(s)
            p /= p.sum()
            total -= float((t * np.log(p + 1e-300)).sum())
            grad -= x.T @ (t - p)
        return total / n + l2 * float(w @ w) / (2 * n), grad / n + l2 * w / n

    w = minimize(loss, np.zeros(stacked.shape[1]), jac=True, method="L-BFGS-B").x
    return lambda rows: ((design(rows, names) - mu) / sd) @ w


def ndcg10(scores: np.ndarray, rows: list[dict[str, Any]], relevant: list[str]) -> float:
    order = np.lexsort((np.arange(len(rows)), -np.asarray(scores, dtype=np.float64)))[:10]
    dcg = sum(1.0 / math.log2(r + 2) for r, i in enumerate(order) if rows[i]["label"])
    idcg = sum(1.0 / math.log2(r + 2) for r in range(min(10, len(relevant))))
    return dcg / idcg if idcg else 0.0


def cross_validate(
    queries: list[dict[str, Any]], names: list[str], model: str, *, folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(learned, default) nDCG@10 per query, each query scored by a ranker trained without it."""
    from sklearn.model_selection import KFold

    learned, default = np.zeros(len(queries)), np.zeros(len(queries))
    for tr, te in KFold(folds, shuffle=True, random_state=seed).split(queries):
        train = [queries[i] for i in tr]
        if model == "listwise":
            scorer = fit_listwise(train, names)
        else:
            scorer = fit_pointwise(train, names, model, seed)
        for i in te:
            q = queries[i]
            if not q["rows"]:
                continue  # retrieval missed everything: both score 0
            learned[i] = ndcg10(scorer(q["rows"]), q["rows"], q["relevant"])
            default[i] = ndcg10(np.array([r["relevance"] for r in q["rows"]]), q["rows"], q["relevant"])
    return learned, default


def run(queries: list[dict[str, Any]], *, folds: int = 5, seed: int = 0) -> dict[str, Any]:
    from training.evaluation.compare import bootstrap_ci

    results: dict[str, Any] = {}
    default_ndcg = None
    for set_name, names in SETS.items():
        for model in ("logistic", "boosting", "listwise"):
            learned, default = cross_validate(queries, names, model, folds=folds, seed=seed)
            default_ndcg = float(default.mean())
            mean, lo, hi = bootstrap_ci(learned - default, seed=seed)
            results[f"{set_name}/{model}"] = {
                "ndcg@10": round(float(learned.mean()), 4),
                "gain": round(mean, 4),
                "ci95": [round(lo, 4), round(hi, 4)],
            }
    best = max(results, key=lambda k: results[k]["gain"])
    return {"default_ndcg@10": round(default_ndcg or 0.0, 4), "by_features_and_model": results, "best": best}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_dataset_args(p)
    p.add_argument("--folds", type=int, default=5)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if not Path(args.dataset).is_dir():
        sys.exit(f"error: no dataset directory at {args.dataset}")
    args.work_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    enc = args.encoder or bench_encoder(args.work_dir, args.corpus, Path(args.dataset).parent)
    queries = collect(args.dataset, args.split, enc)
    t_collect = time.perf_counter() - t0
    result = run(queries, folds=args.folds, seed=args.seed)
    recall = float(np.mean([any(r["label"] for r in q["rows"]) for q in queries]))
    result |= {
        "dataset": args.dataset,
        "queries": len(queries),
        "recall@100": round(recall, 4),
        "folds": args.folds,
        "seed": args.seed,
        "encoder": str(enc),
        "collect_s": round(t_collect, 1),
        "total_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
