"""What leaving the generic park words (matcher/domain/generic_terms.py: 场景, 技术, 平台 ...) out of the lexical
search does, in both directions. Prints one JSON object.

    python -m bench.generic_terms [--encoder <model directory>] [--results 3000]

* forward, research results: the BEIR sets csl-need2doc-dev (dev) and cranfield (test) through the production
  match path (`training.evaluation.match_eval`), every word searched vs the generic words left out; nDCG@10 and
  the paired difference with a 95 % bootstrap interval over queries;
* forward, the demo park: each enterprise and need labelled in matcher/demo/data/reverse_qrels.jsonl matched
  (enterprise_id / need_id) against the demo park's resources plus `--results` CSL research results, scored
  against the same labels read the other way (a need that fits a scenario: the scenario fits the need);
  resources that were never a labelled query are unjudged, so absolute figures are low-biased;
* reverse, the demo park: `matcher eval --reverse`'s pipeline and lexical variants with and without them."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "data" / "bench"


def _paired(a: dict[str, float], b: dict[str, float]) -> dict[str, Any]:
    from training.evaluation.compare import bootstrap_ci

    mean, lo, hi = bootstrap_ci([a[q] - b[q] for q in a])
    return {"mean": round(mean, 4), "ci95": [round(lo, 4), round(hi, 4)]}


def beir(encoder: Any, name: str, split: str) -> dict[str, Any]:
    from training.data.beir import load_beir
    from training.evaluation.match_eval import run_queries, temporary_engine
    from training.evaluation.metrics import per_query

    corpus, queries, qrels = load_beir(BENCH / name, split)
    queries = {q: t for q, t in queries.items() if q in qrels}
    with temporary_engine(corpus, encoder) as (engine, ids):
        every, _ = run_queries(engine, queries, ids)
        dropped, _ = run_queries(engine, queries, ids, drop_generic=True)
    a, b = per_query(dropped, qrels, "ndcg", 10), per_query(every, qrels, "ndcg", 10)
    return {
        "queries": len(a),
        "ndcg@10_every_word": round(sum(b.values()) / len(b), 4),
        "ndcg@10_generic_left_out": round(sum(a.values()) / len(a), 4),
        "left_out_minus_every": _paired(a, b),
    }


def park_forward(encoder: Any, results: int) -> dict[str, Any]:
    from sqlmodel import Session, select

    from matcher.demo.dataset import find_corpus, load_demo
    from matcher.domain.tables import Enterprise, Need, Resource
    from matcher.domain.taxonomy import default_taxonomy
    from matcher.matching.engine import MatchEngine
    from matcher.matching.query import MatchQuery
    from matcher.settings import Settings
    from matcher.store.db import init_db, make_engine
    from training.evaluation.metrics import per_query
    from training.evaluation.reverse_eval import EVAL_TENANT, load_reverse_qrels

    labels: dict[str, dict[str, int]] = {}
    for resource, fits in load_reverse_qrels().items():
        for target, grade in fits.items():
            labels.setdefault(target, {})[resource] = grade
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="parkmatch-generic-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=None)
        db = make_engine(settings)
        init_db(db)
        corpus = find_corpus()
        load_demo(db, tenant=EVAL_TENANT, results=results if corpus else 0, corpus=corpus)
        engine = MatchEngine(settings, db, default_taxonomy(), encoder)
        engine.start(background_save_s=0)
        try:
            with Session(db) as session:
                ents = {e.external_id: e.id for e in session.exec(select(Enterprise))}
                by_id = {v: k for k, v in ents.items()}
                needs = {f"{by_id[n.enterprise_id]}#{n.title}": n.id for n in session.exec(select(Need))}
                ext = {r.id: r.external_id for r in session.exec(select(Resource))}
            for kind in ("need", "enterprise"):
                targets = [t for t in labels if ("#" in t) == (kind == "need")]
                runs: dict[bool, dict[str, list[tuple[str, float]]]] = {False: {}, True: {}}
                for drop in (False, True):
                    for t in targets:
                        subject = {"need_id": needs[t]} if kind == "need" else {"enterprise_id": ents[t]}
                        q = MatchQuery(**subject, k=10, min_score=0.0, explain=False, per_provider=0)
                        q.drop_generic = drop
                        found = engine.match(q, tenant=EVAL_TENANT).candidates
                        runs[drop][t] = [(str(ext.get(c.id)), c.score) for c in found]
                qrels = {t: labels[t] for t in targets}
                a, b = per_query(runs[True], qrels, "ndcg", 10), per_query(runs[False], qrels, "ndcg", 10)
                out[f"{kind}s"] = {
                    "queries": len(a),
                    "ndcg@10_every_word": round(sum(b.values()) / len(b), 4),
                    "ndcg@10_generic_left_out": round(sum(a.values()) / len(a), 4),
                    "left_out_minus_every": _paired(a, b),
                }
        finally:
            engine.close()
            db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None, help="model directory (default: the configured encoder)")
    parser.add_argument("--results", type=int, default=3000, help="CSL results in the park's forward run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from embeddings.encoders.sentence import load_encoder
    from matcher.models.encoder import load_configured_encoder
    from matcher.settings import Settings
    from training.evaluation.reverse_eval import evaluate_reverse

    encoder = load_encoder(args.encoder) if args.encoder else load_configured_encoder(Settings())
    report: dict[str, Any] = {"encoder": encoder.model_id}
    for name, split in (("csl-need2doc-dev", "dev"), ("cranfield", "test")):
        if (BENCH / name).is_dir():
            report[f"forward:{name}"] = beir(encoder, name, split)
    report["forward:park"] = park_forward(encoder, args.results)
    reverse = evaluate_reverse(
        encoder, variants=("pipeline", "pipeline_all_terms", "lexical", "lexical_content")
    )
    report["reverse:park"] = {
        "queries": reverse["queries"],
        **{v: reverse[v]["ndcg"] for v in ("pipeline", "pipeline_all_terms", "lexical", "lexical_content")},
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
