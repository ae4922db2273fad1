"""Offline evaluation of the reverse direction (a scenario, fund, incubator or result -> the enterprises and open
needs it fits) on the project's own demo park.

The labels are `matcher/demo/data/reverse_qrels.jsonl`: one line per query resource (its external id) with the
enterprises (external id) and needs (``<enterprise external id>#<need title>``) that fit it, graded 2 (fits:
could take it up as it is) or 1 (partly: an adjacent capability); everything else is 0. They were written by
hand from the records alone, before any run, and nothing is tuned on them: it is an evaluation set, held out
by query. A label the fund's own hard terms rule out (its stages, its ticket range) is not a fit.

The demo records (only the project's own: no CSL results) are loaded into a temporary store, the engine indexes
them as the service does, and each query runs through the reverse pipeline (`reverse_plan` + `Pipeline.run`,
the code behind GET /v1/resources/{id}/matches) in several variants:

* ``pipeline`` - the service as configured: dense + lexical fusion, fit, the ranker in service;
* ``lexical`` - BM25 alone over every word of the resource's text (the hard filters still apply);
* ``lexical_content`` - BM25 alone without the generic park words (`matcher.domain.generic_terms`);
* ``pipeline_all_terms`` - the pipeline with every word searched (what the generic words cost or bring);
* ``dense`` - the encoder alone."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, select

from embeddings.encoders.base import Encoder
from matcher.demo.dataset import load_demo
from matcher.domain.tables import Enterprise, Need, Resource
from matcher.domain.taxonomy import default_taxonomy
from matcher.indexing.demand_keys import DEMAND_NEED, split_demand_key
from matcher.matching.engine import MatchEngine
from matcher.matching.pipeline import MatchOutcome
from matcher.matching.ranker import Ranker
from matcher.matching.reverse import reverse_plan
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine
from training.evaluation.compare import bootstrap_ci
from training.evaluation.metrics import evaluate, per_query

EVAL_TENANT = "demo-park"
VARIANTS = ("pipeline", "lexical", "lexical_content", "pipeline_all_terms", "dense")
# the case the reverse direction was judged on: a new elderly-care scenario and the enterprises that fit it
CASE = "demo-scenario-41"

Qrels = dict[str, dict[str, int]]


class ReverseQrelsError(ValueError):
    """The labels file is missing or has a malformed line."""


def load_reverse_labels(path: str | Path | None = None) -> tuple[Qrels, dict[str, str]]:
    """({query resource external id: {target id: grade}}, {query: its group, when the line names one}); the
    demo's own labels when no path is given."""
    if path is None:
        text = (
            resources.files("matcher.demo").joinpath("data/reverse_qrels.jsonl").read_text(encoding="utf-8")
        )
        where = "reverse_qrels.jsonl"
    else:
        p = Path(path)
        if not p.is_file():
            raise ReverseQrelsError(f"no labels file at {p}")
        text, where = p.read_text(encoding="utf-8"), str(p)
    out: Qrels = {}
    groups: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            query, fits, group = row["query"], row["fits"], row.get("group")
            ok = isinstance(query, str) and isinstance(fits, dict) and isinstance(group, str | None)
            ok = ok and all(isinstance(k, str) and v in (0, 1, 2) for k, v in fits.items())
        except (ValueError, KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise ReverseQrelsError(
                f'{where} line {n}: expected {{"query": id, "fits": {{target id: grade 0-2}}, "group": optional}}'
            )
        if query in out:
            raise ReverseQrelsError(f"{where} line {n}: query {query} is labelled twice")
        out[query] = {k: int(v) for k, v in fits.items()}
        if group:
            groups[query] = group
    return out, groups


def load_reverse_qrels(path: str | Path | None = None) -> Qrels:
    """The labels alone (see `load_reverse_labels`)."""
    return load_reverse_labels(path)[0]


class _OneSignal:
    """A ranker that orders by one retrieval similarity alone (the baselines)."""

    def __init__(self, feature: str) -> None:
        self.feature = feature
        self.version = f"{feature}-only"

    def score(self, rows: Sequence[dict[str, float | None]]) -> np.ndarray:
        return np.array([float(r.get(self.feature) or 0.0) for r in rows], dtype=np.float64)


def run_variant(engine: MatchEngine, resource_id: int, variant: str, *, k: int = 10) -> MatchOutcome:
    """One query resource through the reverse pipeline as `variant` (see the module's docstring)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}")
    plan = reverse_plan(
        resource_id,
        tenant=EVAL_TENANT,
        side=engine.indexer.demand_side(),
        db=engine.db,
        taxonomy=engine.taxonomy,
        k=k,
        min_score=0.0,
        include=("need", "enterprise"),
        weight_for=engine.dense_weight_for,
    )
    plan.explainer = None
    ranker: Ranker = engine.ranker_for(EVAL_TENANT)
    if variant in ("lexical", "pipeline_all_terms"):
        plan.terms = None  # every word of the text, as the lexical index tokenises it
    if variant.startswith("lexical"):
        plan.dense_weight, ranker = 0.0, _OneSignal("lexical")
    elif variant == "dense":
        plan.dense_weight, ranker = 1.0, _OneSignal("dense")
    return engine.pipeline.run(plan, ranker)


def _target_ids(engine: MatchEngine) -> tuple[dict[str, int], Callable[[int], str | None]]:
    """(resource external id -> id, demand key -> target id) over the evaluation store."""
    with Session(engine.db) as session:
        resources_by_ext = {
            r.external_id: r.id for r in session.exec(select(Resource)) if r.external_id is not None
        }
        ents = {e.id: e.external_id for e in session.exec(select(Enterprise))}
        needs = {n.id: f"{ents.get(n.enterprise_id)}#{n.title}" for n in session.exec(select(Need))}

    def target(key: int) -> str | None:
        typ, rid = split_demand_key(key)
        return needs.get(rid) if typ == DEMAND_NEED else ents.get(rid)

    return resources_by_ext, target


def check_labels(qrels: Qrels, resources_by_ext: Mapping[str, int], targets: set[str]) -> None:
    """Every labelled query and target must be a demo record: a typo would silently lower the scores."""
    missing = [q for q in qrels if q not in resources_by_ext]
    missing += [t for rel in qrels.values() for t in rel if t not in targets]
    if missing:
        raise ReverseQrelsError("labels name records the demo park does not hold: " + ", ".join(missing[:5]))


def evaluate_reverse(
    encoder: Encoder,
    *,
    qrels_path: str | Path | None = None,
    k: int = 10,
    variants: Sequence[str] = VARIANTS,
) -> dict[str, Any]:
    """nDCG@k, recall@k and MRR@k of each variant over the labelled queries, and the pipeline's paired gain
    over lexical alone (mean over queries, 95 % bootstrap interval)."""
    t0 = time.perf_counter()
    qrels, groups = load_reverse_labels(qrels_path)
    runs: dict[str, dict[str, list[tuple[str, float]]]] = {v: {} for v in variants}
    with tempfile.TemporaryDirectory(prefix="parkmatch-reverse-eval-") as tmp:
        settings = Settings(data_dir=Path(tmp), database_url=None)
        db = make_engine(settings)
        init_db(db)
        load_demo(db, tenant=EVAL_TENANT, results=0, corpus=None)
        engine = MatchEngine(settings, db, default_taxonomy(), encoder)
        try:
            engine.start(background_save_s=0)
            resources_by_ext, target = _target_ids(engine)
            indexed = {target(int(key)) for key in engine.demand.lexical.ids()}
            check_labels(qrels, resources_by_ext, {t for t in indexed if t})
            for query in qrels:
                for v in variants:
                    out = run_variant(engine, resources_by_ext[query], v, k=k)
                    runs[v][query] = [(target(c.id) or str(c.id), c.score) for c in out.candidates]
        finally:
            engine.close()
            db.dispose()
    return _report(qrels, groups, runs, k, encoder.model_id, time.perf_counter() - t0)


def _report(
    qrels: Qrels,
    groups: dict[str, str],
    runs: dict[str, dict[str, list[tuple[str, float]]]],
    k: int,
    model_id: str,
    seconds: float,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "set": "demo park, reverse direction (matcher/demo/data/reverse_qrels.jsonl)",
        "encoder": model_id,
        "queries": len(qrels),
        "labelled_fits": sum(1 for rel in qrels.values() for g in rel.values() if g > 0),
    }
    out.update(_scores(qrels, runs, k))
    for group in sorted(set(groups.values())):
        subset = {q: rel for q, rel in qrels.items() if groups.get(q) == group}
        out[f"group:{group}"] = {"queries": len(subset), **_scores(subset, runs, k)}
    if CASE in qrels and "pipeline" in runs:
        out["case"] = {"query": CASE, **{v: [t for t, _ in run.get(CASE, [])[:5]] for v, run in runs.items()}}
    out["total_s"] = round(seconds, 2)
    return out


def _scores(qrels: Qrels, runs: dict[str, dict[str, list[tuple[str, float]]]], k: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v, run in runs.items():
        m = evaluate(run, qrels, ks=(k,))
        out[v] = {name: round(m[f"{name}@{k}"], 4) for name in ("ndcg", "recall", "mrr")}
    if "pipeline" in runs and "lexical" in runs:
        a = per_query(runs["pipeline"], qrels, "ndcg", k)
        b = per_query(runs["lexical"], qrels, "ndcg", k)
        mean, lo, hi = bootstrap_ci([a[q] - b[q] for q in a])
        out[f"pipeline_minus_lexical_ndcg@{k}"] = {
            "mean": round(mean, 4),
            "ci95": [round(lo, 4), round(hi, 4)],
        }
    return out
