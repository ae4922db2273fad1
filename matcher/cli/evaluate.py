"""`matcher eval DATASET_DIR`: nDCG@10, recall@10/100 and MRR@10 of the production match path."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        dataset_dir: Path = typer.Argument(
            ..., help="BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv"
        ),
        split: str = typer.Option("test", help="qrels split to score"),
        as_json: bool = typer.Option(False, "--json", help="print only the JSON object"),
        dense_weight: float = typer.Option(None, help="override the fusion weight of the dense side"),
    ) -> None:
        """Index the corpus as research results in a temporary store and score every query."""
        from matcher.cli.errors import CliError
        from matcher.models.encoder import load_configured_encoder
        from matcher.settings import Settings
        from training.data.beir import BeirFormatError
        from training.evaluation.match_eval import evaluate_dataset

        if not dataset_dir.is_dir():
            raise CliError(f"no dataset directory at {dataset_dir}")
        if dense_weight is not None and not 0 <= dense_weight <= 1:
            raise CliError("--dense-weight must be between 0 and 1")
        encoder = load_configured_encoder(Settings())
        try:
            result = evaluate_dataset(
                dataset_dir, encoder, split=split, dense_weight=dense_weight, show_progress=not as_json
            )
        except BeirFormatError as exc:
            raise CliError(str(exc)) from None
        typer.echo(json.dumps(result, ensure_ascii=False))
