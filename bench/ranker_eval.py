"""A ranker trained on half of csl-need2doc-dev's queries, scored on the other half against the transparent default.

Honesty rules built in:

* queries are split in two halves by a seeded shuffle; every choice (model family, objective, list features)
  is made by 5-fold cross-validation *inside the training half*; the held-out half is scored once;
* the static encoder the engine uses is trained with ``exclude_ids`` = every document judged by any benchmark
  set, so no judged document shaped the dense side either;
* candidates and features come from the production match path (`MatchEngine.match`, top 100), and nDCG@10 is
  measured against the known relevant document even when retrieval missed it (both rankers then score 0).

Usage::

    python -m bench.ranker_eval --work-dir /tmp/parkmatch-ranker-bench > ranker_eval.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from matcher.matching.ranker import TransparentRanker
from training.data.beir import judged_doc_ids, load_beir
from training.data.labels import LabelledRows, from_qrels
from training.evaluation.compare import all_groups, compare, grouped_kfold, grouped_split, per_query_ndcg
from training.rankers.estimator import LearnedRanker

DEFAULT_SET = "/work/shared/data/bench/csl-need2doc-dev"
DEFAULT_CORPUS = "/work/shared/data/research_results/csl_corpus.jsonl"
CONFIGS: dict[str, dict[str, Any]] = {
    "logistic": {"model": "logistic", "use_list_features": False},
    "logistic+list": {"model": "logistic", "use_list_features": True},
    "pairwise+list": {"model": "logistic", "objective": "pairwise", "use_list_features": True},
    "boosting+list": {"model": "boosting", "use_list_features": True},
}


def bench_encoder(work: Path, corpus_file: str, bench_root: Path, *, retrain: bool = False) -> Path:
    """A static encoder trained on the research-results corpus minus every judged benchmark document."""
    out = work / "encoder"
    if out.exists() and not retrain:
        return out
    from training.encoders.static import train_static_encoder

    judged: set[str] = set()
    for d in bench_root.iterdir():
        if d.is_dir():
            judged |= judged_doc_ids(d)
    with open(corpus_file, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    train_static_encoder(records, out, exclude_ids=judged, epochs=10, show_progress=False)
    return out


def collect(
    dataset: str, split: str, encoder_dir: Path, k: int = 100, cache: Path | None = None
) -> LabelledRows:
    """Candidates and features of every judged query from the production match path (cached by `cache`)."""
    import pickle

    from embeddings.encoders.sentence import load_encoder
    from training.evaluation.match_eval import temporary_engine

    if cache is not None and cache.exists():
        with cache.open("rb") as fh:
            return pickle.load(fh)

    corpus, queries, qrels = load_beir(dataset, split)
    queries = {q: t for q, t in queries.items() if q in qrels}
    with temporary_engine(corpus, load_encoder(str(encoder_dir)), prefix="parkmatch-ranker-") as (
        engine,
        ids,
    ):
        data = from_qrels(engine, queries, qrels, ids, k=k)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with cache.open("wb") as fh:
            pickle.dump(data, fh)
    return data


def cv_score(data: LabelledRows, groups: list[str], params: dict[str, Any], seed: int) -> float:
    """Mean per-query nDCG@10 gain over the transparent ranker, 5-fold by query within `groups`."""
    gains = []
    base = TransparentRanker()
    for tr, te in grouped_kfold(groups, k=5, seed=seed):
        train = data.subset(tr)
        model = LearnedRanker(**params, random_state=seed).fit(
            train.rows, train.labels, groups=train.groups, positions=train.positions
        )
        a, b = per_query_ndcg(model, data, te), per_query_ndcg(base, data, te)
        gains += [a[q] - b[q] for q in b]
    return float(np.mean(gains)) if gains else 0.0


def run(
    dataset: str, split: str, encoder_dir: Path, *, seed: int = 0, cache: Path | None = None
) -> dict[str, Any]:
    t0 = time.perf_counter()
    data = collect(dataset, split, encoder_dir, cache=cache)
    t_collect = time.perf_counter() - t0
    train_g, test_g = grouped_split(all_groups(data), test_size=0.5, seed=seed)
    assert not set(train_g) & set(test_g)
    cv = {name: round(cv_score(data, train_g, params, seed), 4) for name, params in CONFIGS.items()}
    best = max(cv, key=lambda n: cv[n])
    train = data.subset(train_g)
    model = LearnedRanker(**CONFIGS[best], random_state=seed).fit(
        train.rows, train.labels, groups=train.groups, positions=train.positions
    )
    held = compare(model, TransparentRanker(), data, test_g, seed=seed)
    # what the other configurations would have scored on the held-out half (reported, not used to choose)
    others = {}
    for name, params in CONFIGS.items():
        m = LearnedRanker(**params, random_state=seed).fit(
            train.rows, train.labels, groups=train.groups, positions=train.positions
        )
        others[name] = round(compare(m, TransparentRanker(), data, test_g, seed=seed).candidate, 4)
    recall = np.mean(
        [1.0 if any(data.labels[i] for i, g in enumerate(data.groups) if g == q) else 0.0 for q in test_g]
    )
    return {
        "dataset": dataset,
        "split": split,
        "encoder": str(encoder_dir),
        "queries": {"train": len(train_g), "test": len(test_g)},
        "candidates_per_query": 100,
        "test_recall@100": round(float(recall), 4),
        "cv_gain_by_config (train half)": cv,
        "chosen": best,
        "held_out": {
            "ndcg@10_transparent": round(held.incumbent, 4),
            "ndcg@10_learned": round(held.candidate, 4),
            "diff": round(held.diff, 4),
            "ci95": [round(held.ci_low, 4), round(held.ci_high, 4)],
            "promote": held.promote,
        },
        "held_out_ndcg@10_all_configs": others,
        "seed": seed,
        "collect_s": round(t_collect, 1),
        "total_s": round(time.perf_counter() - t0, 1),
    }


def add_dataset_args(p: argparse.ArgumentParser) -> None:
    """The options every csl-need2doc-dev ranker benchmark takes: the set, its split, the encoder and where
    to train one, a work directory and the seed."""
    p.add_argument("--dataset", default=DEFAULT_SET)
    p.add_argument("--split", default="dev")
    p.add_argument("--encoder", type=Path, default=None, help="an encoder directory (default: train one)")
    p.add_argument("--corpus", default=DEFAULT_CORPUS, help="records for training the bench encoder")
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "parkmatch-ranker-bench")
    p.add_argument("--seed", type=int, default=0)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_dataset_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    enc = args.encoder or bench_encoder(args.work_dir, args.corpus, Path(args.dataset).parent)
    cache = args.work_dir / f"rows-{Path(args.dataset).name}-{args.split}.pkl"
    print(
        json.dumps(
            run(args.dataset, args.split, enc, seed=args.seed, cache=cache), ensure_ascii=False, indent=2
        )
    )


if __name__ == "__main__":
    main()
