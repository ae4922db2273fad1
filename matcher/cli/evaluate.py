"""`matcher eval DATASET_DIR`: nDCG@10, recall@10/100 and MRR@10 of the production match path on a BEIR set;
`matcher eval --reverse`: the reverse direction (resource -> enterprises and needs) on the demo park's labels,
the full pipeline against lexical alone."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        dataset_dir: Path = typer.Argument(
            None, help="BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv (not with --reverse)"
        ),
        split: str = typer.Option("test", help="qrels split to score"),
        as_json: bool = typer.Option(False, "--json", help="print only the JSON object"),
        dense_weight: float = typer.Option(None, help="override the fusion weight of the dense side"),
        drop_generic: bool = typer.Option(
            False,
            "--drop-generic",
            help="leave the generic park words (场景, 技术 ...) out of the lexical search (the service searches them "
            "in free text)",
        ),
        reverse: bool = typer.Option(
            False,
            "--reverse",
            help="evaluate resource -> enterprises and needs on the demo park (matcher/demo/data/reverse_qrels.jsonl)",
        ),
        qrels: Path = typer.Option(
            None, "--qrels", help="with --reverse: another labels file of the same form"
        ),
    ) -> None:
        """Index the corpus as research results in a temporary store and score every query (or, with
        --reverse, load the demo park and score the reverse direction)."""
        from matcher.cli.errors import CliError
        from matcher.models.encoder import load_configured_encoder
        from matcher.settings import Settings

        if reverse == (dataset_dir is not None):
            raise CliError("give a dataset directory, or --reverse (not both)")
        if dense_weight is not None and not 0 <= dense_weight <= 1:
            raise CliError("--dense-weight must be between 0 and 1")
        if reverse:
            from training.evaluation.reverse_eval import (
                ReverseQrelsError,
                evaluate_reverse,
                load_reverse_qrels,
            )

            try:
                load_reverse_qrels(qrels)  # a broken labels file is told before the encoder loads
                result = evaluate_reverse(load_configured_encoder(Settings()), qrels_path=qrels)
            except ReverseQrelsError as exc:
                raise CliError(str(exc)) from None
            typer.echo(json.dumps(result, ensure_ascii=False))
            return
        from training.data.beir import BeirFormatError
        from training.evaluation.match_eval import evaluate_dataset

        if not dataset_dir.is_dir():
            raise CliError(f"no dataset directory at {dataset_dir}")
        encoder = load_configured_encoder(Settings())
        try:
            result = evaluate_dataset(
                dataset_dir,
                encoder,
                split=split,
                dense_weight=dense_weight,
                show_progress=not as_json,
                drop_generic=drop_generic or None,
            )
        except BeirFormatError as exc:
            raise CliError(str(exc)) from None
        typer.echo(json.dumps(result, ensure_ascii=False))
