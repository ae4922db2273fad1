"""Offline evaluation of the production match path on a BEIR-layout set.

The corpus is stored as research results in a temporary store, the engine indexes it exactly as the
service does, and every query goes through `MatchEngine.match` (the code behind POST /v1/match)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlmodel import Session

from embeddings.encoders.base import Encoder
from matcher.domain.tables import Resource, utcnow
from matcher.domain.taxonomy import default_taxonomy
from matcher.matching.engine import MatchEngine
from matcher.matching.pipeline import MatchOutcome
from matcher.matching.query import MatchQuery
from matcher.matching.retrieval import Relevance
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine
from matcher.store.keys import ensure_tenant
from training.data.project_sets import degenerate_ids, load_set, set_name
from training.evaluation.metrics import evaluate

EVAL_TENANT = "eval"


def build_engine(
    corpus: dict[str, dict[str, str]],
    encoder: Encoder,
    data_dir: Path,
    *,
    dense_weight: float | None = None,
    show_progress: bool = False,
    teacher: Encoder | None = None,
    teacher_relevance: Relevance | None = None,
) -> tuple[MatchEngine, dict[int, str]]:
    """A temporary SQLite store holding the corpus as `result` resources, and an engine over it. With a
    ``teacher``, the teacher tier is on and its queue has embedded every record when this returns."""
    settings = Settings(data_dir=data_dir, database_url=None)
    if dense_weight is not None:
        settings.dense_weight = dense_weight
    db = make_engine(settings)
    init_db(db)
    now = utcnow()
    ids: dict[int, str] = {}
    with Session(db) as session:
        ensure_tenant(session, EVAL_TENANT)
        session.commit()
        rows = []
        for i, (doc_id, doc) in enumerate(corpus.items(), start=1):
            ids[i] = doc_id
            rows.append(
                {
                    "id": i,
                    "tenant_id": EVAL_TENANT,
                    "kind": "result",
                    "external_id": doc_id,
                    "title": doc.get("title") or "",
                    "description": doc.get("text") or "",
                    "industries": [],
                    "language": "zh",
                    "status": "active",
                    "visibility": "public",
                    "details": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        for start in range(0, len(rows), 5000):
            session.execute(insert(Resource), rows[start : start + 5000])
        session.commit()
    engine = MatchEngine(
        settings,
        db,
        default_taxonomy(),
        encoder,
        relevance=None,
        teacher=teacher,
        teacher_relevance=teacher_relevance,
    )
    engine.start(background_save_s=0)
    for store in engine.indexer.teachers.values():
        store.drain()
    return engine, ids


def match_text(
    engine: MatchEngine,
    text: str,
    *,
    k: int = 100,
    dense_weight: float | None = None,
    tenant: str = EVAL_TENANT,
    drop_generic: bool | None = None,
) -> MatchOutcome:
    """One benchmark query through the production match path: research results only, cut to the query length
    limit, with no score floor, no per-provider limit and no explanations."""
    return engine.match(
        MatchQuery(
            text=text[: engine.settings.max_query_chars],
            kinds=("result",),
            k=k,
            min_score=0.0,
            per_provider=0,
            explain=False,
            dense_weight=dense_weight,
            drop_generic=drop_generic,
        ),
        tenant=tenant,
    )


@contextmanager
def temporary_engine(
    corpus: dict[str, dict[str, str]],
    encoder: Encoder,
    *,
    dense_weight: float | None = None,
    prefix: str = "parkmatch-eval-",
    teacher: Encoder | None = None,
    teacher_relevance: Relevance | None = None,
) -> Iterator[tuple[MatchEngine, dict[int, str]]]:
    """`build_engine` in a temporary directory, closed and removed on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        engine, ids = build_engine(
            corpus,
            encoder,
            Path(tmp),
            dense_weight=dense_weight,
            teacher=teacher,
            teacher_relevance=teacher_relevance,
        )
        try:
            yield engine, ids
        finally:
            engine.close()
            engine.db.dispose()


def run_queries(
    engine: MatchEngine,
    queries: dict[str, str],
    ids: dict[int, str],
    *,
    k: int = 100,
    dense_weight: float | None = None,
    progress: Callable[[int], None] | None = None,
    drop_generic: bool | None = None,
) -> tuple[dict[str, list[tuple[str, float]]], list[float]]:
    run: dict[str, list[tuple[str, float]]] = {}
    latencies: list[float] = []
    for qid, text in queries.items():
        t0 = time.perf_counter()
        out = match_text(engine, text, k=k, dense_weight=dense_weight, drop_generic=drop_generic)
        latencies.append((time.perf_counter() - t0) * 1000)
        run[qid] = [(ids[c.id], c.score) for c in out.candidates]
        if progress:
            progress(1)
    return run, latencies


def _without(
    run: dict[str, list[tuple[str, float]]], qrels: dict[str, dict[str, int]], drop: set[str]
) -> dict[str, Any] | None:
    """Metrics over the queries not in ``drop``; None when none of the judged queries is dropped."""
    kept = {q: rel for q, rel in qrels.items() if q not in drop}
    if len(kept) == len(qrels) or not kept:
        return None
    metrics = evaluate({q: run.get(q, []) for q in kept}, kept, ks=(10, 100))
    return {
        "queries": len(kept),
        "ndcg@10": round(metrics["ndcg@10"], 4),
        "recall@10": round(metrics["recall@10"], 4),
        "mrr@10": round(metrics["mrr@10"], 4),
    }


def evaluate_dataset(
    dataset_dir: str | Path,
    encoder: Encoder,
    *,
    split: str = "test",
    dense_weight: float | None = None,
    show_progress: bool = False,
    bench_dir: str | Path | None = None,
    drop_generic: bool | None = None,
    teacher: Encoder | None = None,
) -> dict[str, Any]:
    """Every query of a BEIR directory or a project set (`training.data.project_sets.load_set`) through the
    production match path; sets with queries marked degenerate also report the figures without them.
    ``teacher``: with the teacher tier on (every record embedded by it before the queries run).
    `drop_generic`: whether the lexical side leaves the generic park words out
    (`matcher.domain.generic_terms`); None: as the service does for free text (it searches them)."""
    t0 = time.perf_counter()
    corpus, queries, qrels = load_set(dataset_dir, split, bench_dir)
    queries = {q: t for q, t in queries.items() if q in qrels}
    with temporary_engine(corpus, encoder, dense_weight=dense_weight, teacher=teacher) as (engine, ids):
        t_index = time.perf_counter() - t0
        bar = None
        if show_progress:
            from tqdm import tqdm

            bar = tqdm(total=len(queries), desc="queries", unit="q")
        try:
            run, lat = run_queries(
                engine,
                queries,
                ids,
                dense_weight=dense_weight,
                progress=bar.update if bar else None,
                drop_generic=drop_generic,
            )
        finally:
            if bar:
                bar.close()
    metrics = evaluate(run, qrels, ks=(10, 100))
    lat_arr = np.array(lat) if lat else np.zeros(1)
    out = {
        "dataset": set_name(dataset_dir) or str(dataset_dir),
        "split": split,
        "encoder": encoder.model_id,
        "teacher": None if teacher is None else teacher.model_id,
        "dense_weight": "per language (settings)" if dense_weight is None else dense_weight,
        "lexical_terms": "without generic park words" if drop_generic else "every word",
        "ndcg@10": round(metrics["ndcg@10"], 4),
        "recall@10": round(metrics["recall@10"], 4),
        "recall@100": round(metrics["recall@100"], 4),
        "mrr@10": round(metrics["mrr@10"], 4),
        "queries": len(queries),
        "documents": len(corpus),
        "index_s": round(t_index, 2),
        "query_ms_p50": round(float(np.percentile(lat_arr, 50)), 2),
        "query_ms_p99": round(float(np.percentile(lat_arr, 99)), 2),
        "total_s": round(time.perf_counter() - t0, 2),
    }
    without = _without(run, qrels, degenerate_ids(dataset_dir))
    if without is not None:
        out["without_degenerate"] = without
    return out
