"""`matcher calibrate`: fit the fusion weight and the score calibration per query language for the configured
encoder on labelled sets, report them held out by query (5-fold), and write them where serving reads them."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import typer

DEFAULT_SETS = ("csl-need2doc-dev:dev", "cranfield:dev", "csl-need2doc-en:dev")


def _pools(corpus, queries, qrels, encoder, teacher, saved: Path | None) -> list:  # noqa: ANN001
    """Each judged query's candidate pool through the match path (read from ``saved`` when it is there)."""
    from matcher.matching.retrieval import Relevance
    from training.evaluation.calibrate import collect
    from training.evaluation.match_eval import temporary_engine

    if saved is not None and saved.is_file():
        return pickle.loads(saved.read_bytes())
    relevance = Relevance() if teacher is not None else None  # pools keep raw similarities: any will do
    with temporary_engine(corpus, encoder, teacher=teacher, teacher_relevance=relevance) as (engine, ids):
        mine = collect(engine, queries, qrels, ids, tier="teacher" if teacher is not None else None)
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_bytes(pickle.dumps(mine))
    return mine


def _pools_file(root: Path | None, name: str, split: str, encoder, teacher) -> Path | None:  # noqa: ANN001
    if root is None:
        return None
    key = f"{name}:{split}:{encoder.model_id}:{teacher.model_id if teacher is not None else ''}"
    if getattr(teacher, "cached_only", False):
        key += f":cached-only:{len(teacher.cache)}"
    return root / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".pkl")


def register(app: typer.Typer) -> None:
    @app.command("calibrate")
    def calibrate(
        sets: list[str] = typer.Option(
            list(DEFAULT_SETS),
            "--set",
            help="NAME_OR_DIR:SPLIT, repeatable (a BEIR directory or a project set)",
        ),
        bench_data: Path = typer.Option(
            None, help="where the public sets are (default ../shared/data/bench)"
        ),
        out: Path = typer.Option(
            None, "--out", help="where to write fusion.json (default: inside the encoder's model directory)"
        ),
        folds: int = typer.Option(5, min=2, help="folds of queries for the held-out report"),
        dry_run: bool = typer.Option(False, "--dry-run", help="report only, write nothing"),
        teacher: bool = typer.Option(
            False,
            "--teacher",
            help="calibrate the teacher tier (every candidate scored by the teacher); default --out: "
            "fusion.teacher.json in the teacher's model directory",
        ),
        vector_cache: Path = typer.Option(
            None, "--vector-cache", help="with --teacher: where the teacher's vectors are cached"
        ),
        cached_only: bool = typer.Option(
            False,
            "--cached-only",
            help="with --teacher: embed no document; those not in the vector cache are left out of the pools",
        ),
        pools_cache: Path = typer.Option(
            None,
            "--pools-cache",
            help="keep each set's candidate pools here (by set, split, encoder and teacher), so a re-run "
            "with other folds or output runs no query again",
        ),
    ) -> None:
        """Fit and report; prints one JSON object (the held-out figures per language and the fitted values)."""
        from matcher.cli.errors import CliError
        from matcher.models.encoder import load_configured_encoder
        from matcher.settings import Settings
        from training.data.beir import BeirFormatError
        from training.data.project_sets import default_bench_dir, load_set, public_set_dir, set_name
        from training.evaluation.calibrate import cross_validate, fit, write_calibration

        parsed = []
        for item in sets:
            name, _, split = item.rpartition(":")
            if not name or not split:
                raise CliError(f"--set {item!r}: expected NAME_OR_DIR:SPLIT")
            if not Path(name).is_dir() and set_name(name) is None:  # a public set by name
                name = str(Path(bench_data or default_bench_dir()) / name)
                if not Path(name).is_dir():
                    raise CliError(f"--set {item!r}: no set directory at {name}")
            try:
                public_set_dir(name, bench_data)
            except BeirFormatError as exc:
                raise CliError(str(exc)) from None
            parsed.append((name, split))
        from matcher.cli.evaluate import cached_teacher

        encoder = load_configured_encoder(Settings())
        teacher_encoder = cached_teacher(Settings(), vector_cache, cached_only) if teacher else None
        pools = []
        for name, split in parsed:
            try:
                corpus, queries, qrels = load_set(name, split, bench_data)
            except BeirFormatError as exc:
                raise CliError(str(exc)) from None
            saved = _pools_file(pools_cache, name, split, encoder, teacher_encoder)
            mine = _pools(corpus, queries, qrels, encoder, teacher_encoder, saved)
            for p in mine:
                p.qid = f"{name}/{p.qid}"
            pools += mine
            typer.echo(f"{name} ({split}): {len(mine)} queries", err=True)
        if not pools:
            raise CliError("no judged queries in the sets given")
        report = cross_validate(pools, folds=folds)
        params = fit(pools)
        target = out
        fitted_for = teacher_encoder or encoder
        if target is None and not dry_run:
            source = getattr(fitted_for, "source", None)
            if not source or not Path(source).is_dir():
                raise CliError("the encoder is not a local model directory: give --out")
            target = Path(source) / ("fusion.teacher.json" if teacher else "fusion.json")
        meta: dict = {"encoder": fitted_for.model_id}
        if teacher_encoder is not None:
            meta.update(tier="teacher", dimension=teacher_encoder.dimension, student=encoder.model_id)
        meta.update(sets=[f"{n}:{s}" for n, s in parsed], heldout=report)
        if not dry_run and target is not None:
            write_calibration(target, params, meta)
        body = {
            "written": None if dry_run else str(target),
            "fitted": {k: vars(v) for k, v in params.items()},
        }
        typer.echo(json.dumps({**body, "heldout": report}, ensure_ascii=False))
