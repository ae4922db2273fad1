"""`matcher eval DATASET`: nDCG@10, recall@10/100 and MRR@10 of the production match path.

DATASET is a BEIR directory, or a set the project wrote on top of a public one (`csl-need2doc-en`), given by name
or by its path under the bench data directory; such a set is built at run time from the public set."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        dataset: str = typer.Argument(
            ...,
            help="BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), or a project set: "
            "csl-need2doc-en (English needs on csl-need2doc-dev), by name or as <bench data>/csl-need2doc-en",
        ),
        split: str = typer.Option("test", help="qrels split to score"),
        as_json: bool = typer.Option(False, "--json", help="print only the JSON object"),
        dense_weight: float = typer.Option(None, help="override the fusion weight of the dense side"),
        bench_data: Path = typer.Option(
            None,
            help="where the public sets are, for a project set given by name "
            "(default: ../shared/data/bench beside the repository)",
        ),
    ) -> None:
        """Index the corpus as research results in a temporary store and score every query."""
        from matcher.cli.errors import CliError
        from matcher.models.encoder import load_configured_encoder
        from matcher.settings import Settings
        from training.data.beir import BeirFormatError
        from training.data.project_sets import public_set_dir, set_name
        from training.evaluation.match_eval import evaluate_dataset

        if not Path(dataset).is_dir() and set_name(dataset) is None:
            raise CliError(f"no dataset directory at {dataset}")
        if dense_weight is not None and not 0 <= dense_weight <= 1:
            raise CliError("--dense-weight must be between 0 and 1")
        try:
            public_set_dir(dataset, bench_data)  # a project set's public part, before loading any model
        except BeirFormatError as exc:
            raise CliError(str(exc)) from None
        encoder = load_configured_encoder(Settings())
        try:
            result = evaluate_dataset(
                dataset,
                encoder,
                split=split,
                dense_weight=dense_weight,
                show_progress=not as_json,
                bench_dir=bench_data,
            )
        except BeirFormatError as exc:
            raise CliError(str(exc)) from None
        typer.echo(json.dumps(result, ensure_ascii=False))
