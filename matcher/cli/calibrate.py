"""`matcher calibrate`: fit the fusion weight and the score calibration per query language for the configured
encoder on labelled sets, report them held out by query (5-fold), and write them where serving reads them."""

from __future__ import annotations

import json
from pathlib import Path

import typer

DEFAULT_SETS = ("csl-need2doc-dev:dev", "cranfield:dev", "csl-need2doc-en:dev")


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
    ) -> None:
        """Fit and report; prints one JSON object (the held-out figures per language and the fitted values)."""
        from matcher.cli.errors import CliError
        from matcher.models.encoder import load_configured_encoder
        from matcher.settings import Settings
        from training.data.beir import BeirFormatError
        from training.data.project_sets import default_bench_dir, load_set, public_set_dir, set_name
        from training.evaluation.calibrate import collect, cross_validate, fit, write_calibration
        from training.evaluation.match_eval import temporary_engine

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
        encoder = load_configured_encoder(Settings())
        pools = []
        for name, split in parsed:
            try:
                corpus, queries, qrels = load_set(name, split, bench_data)
            except BeirFormatError as exc:
                raise CliError(str(exc)) from None
            with temporary_engine(corpus, encoder) as (engine, ids):
                mine = collect(engine, queries, qrels, ids)
            for p in mine:
                p.qid = f"{name}/{p.qid}"
            pools += mine
            typer.echo(f"{name} ({split}): {len(mine)} queries", err=True)
        if not pools:
            raise CliError("no judged queries in the sets given")
        report = cross_validate(pools, folds=folds)
        params = fit(pools)
        target = out
        if target is None and not dry_run:
            source = getattr(encoder, "source", None)
            if not source or not Path(source).is_dir():
                raise CliError("the encoder is not a local model directory: give --out")
            target = Path(source) / "fusion.json"
        meta = {"encoder": encoder.model_id, "sets": [f"{n}:{s}" for n, s in parsed], "heldout": report}
        if not dry_run and target is not None:
            write_calibration(target, params, meta)
        body = {
            "written": None if dry_run else str(target),
            "fitted": {k: vars(v) for k, v in params.items()},
        }
        typer.echo(json.dumps({**body, "heldout": report}, ensure_ascii=False))
