"""Cross-validated nDCG@10 of the match path on csl-need2doc-dev with an encoder trained on the training folds.

For each of ``--folds`` folds (queries split at random, grouped by query; every query has one judged document):

1. the training folds' queries are cut in two: a *tuning slice* (``--tune-fraction``, default 20 %) and the
   rest. The encoder is trained on
   a. self-supervised pairs (:mod:`training.data.pairs`) from the set's own ``corpus.jsonl`` documents, minus every
      document a held-out query or a tuning query judges (a judged document of this set has its problem clause,
      i.e. the query, cut out already; the research-results originals, which still contain it, are never read
      for judged documents: only the keywords of unjudged ones are joined from ``--keywords``), plus
   b. the remaining training queries' qrels as supervised (query -> judged document) pairs, each with one
      BM25-mined hard negative, repeated ``--pair-repeats`` times per epoch;
2. the corpus is indexed exactly as the service indexes it (:func:`training.evaluation.match_eval.build_engine`) and the
   queries go through ``MatchEngine.match`` (:func:`training.evaluation.match_eval.run_queries`);
3. the fusion dense weight is the one with the best nDCG@10 on the tuning slice (never on the held-out fold);
4. the held-out fold is scored at that weight, at dense weight 0 (BM25 alone, the same index) and at the
   service's default weight for Chinese.

Printed JSON: per fold and mean nDCG@10 / recall@10, training seconds, chosen weights.

Usage::

    python -m bench.encoder_cv                                  # 5 folds, the default recipe (about 15 min)
    python -m bench.encoder_cv --only 1 --epochs 3              # a quick look at one fold
    python -m bench.encoder_cv --pair-repeats 1,8               # two recipes; choose by mean tuning nDCG@10
    python -m bench.encoder_cv --no-pairs                       # self-supervised pairs only (the baseline)

With several recipes, choose by ``mean_tuning_ndcg@10_at_chosen_weight`` (the tuning slices are part of the
training folds); the held-out figures of the recipes not chosen are for information only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_DATA = os.environ.get("PARKMATCH_DATA", "/work/shared/data")
WEIGHTS = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5]

logger = logging.getLogger("bench.encoder_cv")


def _load_keywords(path: Path, skip: set[str]) -> dict[str, list[str]]:
    """Author keywords of the research-results originals, for documents not in ``skip`` (nothing else is read)."""
    out: dict[str, list[str]] = {}
    if not path.is_file():
        return out
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            rid = str(rec.get("id"))
            if rid in skip:
                continue
            kw = rec.get("keywords") or []
            if kw:
                out[rid] = [str(k) for k in kw]
    return out


def _doc_text(doc: dict[str, str]) -> str:
    return "\n".join(p for p in (doc.get("title") or "", doc.get("text") or "") if p)


def _score(engine, ids, queries: dict[str, str], qrels, weight: float | None) -> dict[str, float]:
    from training.evaluation.match_eval import run_queries
    from training.evaluation.metrics import evaluate

    if not queries:
        return {"ndcg@10": 0.0, "recall@10": 0.0}
    run, _ = run_queries(engine, queries, ids, k=100, dense_weight=weight)
    m = evaluate(run, {q: qrels[q] for q in queries}, ks=(10,))
    return {"ndcg@10": m["ndcg@10"], "recall@10": m["recall@10"]}


def run_fold(
    fold: int,
    train_q: list[str],
    test_q: list[str],
    *,
    corpus: dict[str, dict[str, str]],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    keywords: dict[str, list[str]],
    args: argparse.Namespace,
    recipe: dict[str, Any],
    work: Path,
) -> dict[str, Any]:
    from embeddings.encoders.sentence import load_encoder
    from training.encoders.static import train_static_encoder
    from training.evaluation.match_eval import temporary_engine

    rng = np.random.default_rng(args.seed + 1000 + fold)
    shuffled = [train_q[i] for i in rng.permutation(len(train_q))]
    n_tune = max(1, int(round(len(shuffled) * args.tune_fraction)))
    tune_q, fit_q = sorted(shuffled[:n_tune]), sorted(shuffled[n_tune:])

    unseen = {d for q in test_q + tune_q for d in qrels[q]}  # documents the scored queries judge
    records = [
        {
            "id": did,
            "title": doc.get("title") or "",
            "text": doc.get("text") or "",
            "keywords": keywords.get(did, []),
        }
        for did, doc in corpus.items()
        if did not in unseen
    ]
    pairs = [
        (queries[q], _doc_text(corpus[d]), None) for q in fit_q for d, rel in qrels[q].items() if rel > 0
    ]
    if args.no_pairs:
        pairs = []
    out_dir = work / f"fold{fold}-{args.tag}"
    t0 = time.time()
    train_static_encoder(
        records,
        out_dir,
        show_progress=args.progress,
        pairs=pairs,
        **recipe,
    )
    train_s = time.time() - t0
    encoder = load_encoder(out_dir)
    t1 = time.time()
    with temporary_engine(corpus, encoder, prefix="pm-encoder-cv-") as (engine, ids):
        index_s = time.time() - t1
        tq = {q: queries[q] for q in tune_q}
        tuning = {w: _score(engine, ids, tq, qrels, w) for w in args.weights}
        best_w = max(args.weights, key=lambda w: (round(tuning[w]["ndcg@10"], 6), -w))
        res: dict[str, Any] = {
            "fold": fold,
            "train_queries_as_pairs": len(fit_q),
            "tuning_queries": len(tune_q),
            "test_queries": len(test_q),
            "records": len(records),
            "train_s": round(train_s, 1),
            "index_s": round(index_s, 1),
            "tuning_ndcg@10": {str(w): round(v["ndcg@10"], 4) for w, v in tuning.items()},
            "chosen_weight": best_w,
        }
        if not args.tune_only:
            hq = {q: queries[q] for q in test_q}
            res["fused"] = _rounded(_score(engine, ids, hq, qrels, best_w))
            res["bm25_only"] = _rounded(_score(engine, ids, hq, qrels, 0.0))
            res["service_default_weight"] = _rounded(_score(engine, ids, hq, qrels, None))
            res["dense_only"] = _rounded(_score(engine, ids, hq, qrels, 1.0))
    if not args.keep_models:
        import shutil

        shutil.rmtree(out_dir, ignore_errors=True)
    return res


def _rounded(m: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in m.items()}


def _mean(rows: list[dict], key: str, metric: str) -> float:
    return round(statistics.fmean(r[key][metric] for r in rows), 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", default=DEFAULT_DATA, help="the shared data directory (bench/, research_results/)"
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--only", type=int, default=0, help="run only the first N folds (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tune-fraction", type=float, default=0.2)
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's)")
    ap.add_argument(
        "--pair-repeats",
        default="1",
        help="supervised pairs per epoch; a comma list compares several recipes",
    )
    ap.add_argument(
        "--problem-weight", type=float, default=None, help="sampling weight of problem-clause pairs"
    )
    ap.add_argument(
        "--no-pairs", action="store_true", help="self-supervised pairs only (the baseline recipe)"
    )
    ap.add_argument("--weights", default=",".join(str(w) for w in WEIGHTS), help="dense weights to tune over")
    ap.add_argument(
        "--tune-only", action="store_true", help="score only the tuning slices (for recipe choice)"
    )
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--keep-models", action="store_true")
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    args.weights = [float(w) for w in args.weights.split(",")]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    from training.data.beir import load_beir
    from training.evaluation.compare import grouped_kfold

    data = Path(args.data)
    corpus, queries, qrels = load_beir(data / "bench" / "csl-need2doc-dev", "dev")
    queries = {q: t for q, t in queries.items() if q in qrels}
    judged = {d for rel in qrels.values() for d in rel}
    # keywords only, and never of a judged document (their originals still hold the query text)
    keywords = _load_keywords(data / "research_results" / "csl_corpus.jsonl", judged)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="pm-encoder-cv-"))
    work.mkdir(parents=True, exist_ok=True)
    folds = list(grouped_kfold(sorted(queries), k=args.folds, seed=args.seed))
    if args.only:
        folds = folds[: args.only]
    report: dict[str, Any] = {
        "set": "csl-need2doc-dev",
        "queries": len(queries),
        "documents": len(corpus),
        "folds": args.folds,
        "folds_run": len(folds),
        "seed": args.seed,
        "tune_fraction": args.tune_fraction,
        "command": "python -m bench.encoder_cv " + " ".join(argv if argv is not None else sys.argv[1:]),
        "runs": [],
    }
    for repeats in [int(x) for x in str(args.pair_repeats).split(",")]:
        recipe: dict[str, Any] = {"pair_repeats": repeats}
        if args.epochs is not None:
            recipe["epochs"] = args.epochs
        if args.problem_weight is not None:
            recipe["kind_weights"] = {
                "title": 1.0,
                "keywords": 1.0,
                "problem": args.problem_weight,
                "ict": 1.0,
            }
        args.tag = f"r{repeats}"
        rows = []
        for fold, (train_q, test_q) in enumerate(folds):
            row = run_fold(
                fold,
                train_q,
                test_q,
                corpus=corpus,
                queries=queries,
                qrels=qrels,
                keywords=keywords,
                args=args,
                recipe=recipe,
                work=work,
            )
            print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
            rows.append(row)
        summary: dict[str, Any] = {
            "recipe": {**recipe, "supervised_pairs": not args.no_pairs},
            "folds": rows,
            "mean_train_s": round(statistics.fmean(r["train_s"] for r in rows), 1),
            "mean_tuning_ndcg@10_at_chosen_weight": round(
                statistics.fmean(r["tuning_ndcg@10"][str(r["chosen_weight"])] for r in rows), 4
            ),
        }
        if not args.tune_only:
            for key in ("fused", "bm25_only", "service_default_weight", "dense_only"):
                summary[key] = {m: _mean(rows, key, m) for m in ("ndcg@10", "recall@10")}
        report["runs"].append(summary)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
