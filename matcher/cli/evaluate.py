"""`matcher eval DATASET`: nDCG@10, recall@10/100 and MRR@10 of the production match path on a BEIR set;
`matcher eval --reverse`: the reverse direction (resource -> enterprises and needs) on the demo park's labels,
the full pipeline against lexical alone.

DATASET is a BEIR directory, or a set the project wrote on top of a public one (`csl-need2doc-en`), given by name
or by its path under the bench data directory; such a set is built at run time from the public set."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def _reverse(qrels: Path | None) -> dict:
    from matcher.cli.errors import CliError
    from matcher.models.encoder import load_configured_encoder
    from matcher.settings import Settings
    from training.evaluation.reverse_eval import ReverseQrelsError, evaluate_reverse, load_reverse_qrels

    try:
        load_reverse_qrels(qrels)  # a broken labels file is told before the encoder loads
        return evaluate_reverse(load_configured_encoder(Settings()), qrels_path=qrels)
    except ReverseQrelsError as exc:
        raise CliError(str(exc)) from None


def cached_teacher(settings, vector_cache: Path | None, cached_only: bool = False):  # noqa: ANN001, ANN201
    """The configured teacher (one readable line when it cannot load), its vectors cached on disk by model and
    text, so that re-running a set embeds nothing again."""
    from embeddings.vector_cache import VectorCache
    from matcher.cli.errors import CliError
    from matcher.indexing.teacher_tier import TeacherUnavailable, load_teacher

    try:
        teacher = load_teacher(settings)
    except TeacherUnavailable as exc:
        raise CliError(str(exc)) from None
    root = vector_cache or settings.model_cache_dir.parent / "vectors"
    return VectorCache(root, teacher.model_id).cached_encoder(teacher, cached_only=cached_only)


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        dataset: str = typer.Argument(
            None,
            help="BEIR layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), or a project set: "
            "csl-need2doc-en (English needs on csl-need2doc-dev), by name or as <bench data>/csl-need2doc-en "
            "(not with --reverse)",
        ),
        split: str = typer.Option("test", help="qrels split to score"),
        as_json: bool = typer.Option(False, "--json", help="print only the JSON object"),
        dense_weight: float = typer.Option(None, help="override the fusion weight of the dense side"),
        bench_data: Path = typer.Option(
            None,
            help="where the public sets are, for a project set given by name "
            "(default: ../shared/data/bench beside the repository)",
        ),
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
        teacher: bool = typer.Option(
            False, "--teacher", help="with the teacher tier on (MATCHER_TEACHER_MODEL, its calibration)"
        ),
        cached_only: bool = typer.Option(
            False,
            "--cached-only",
            help="with --teacher: embed no document; those not in the vector cache stay with the student",
        ),
        vector_cache: Path = typer.Option(
            None,
            "--vector-cache",
            help="with --teacher: where the teacher's vectors are cached by model and text "
            "(default ~/.cache/parkmatch/vectors)",
        ),
    ) -> None:
        """Index the corpus as research results in a temporary store and score every query (or, with
        --reverse, load the demo park and score the reverse direction)."""
        from matcher.cli.errors import CliError
        from matcher.models.encoder import load_configured_encoder
        from matcher.settings import Settings

        if reverse == (dataset is not None):
            raise CliError("give a dataset directory, or --reverse (not both)")
        if dense_weight is not None and not 0 <= dense_weight <= 1:
            raise CliError("--dense-weight must be between 0 and 1")
        if reverse:
            typer.echo(json.dumps(_reverse(qrels), ensure_ascii=False))
            return
        from training.data.beir import BeirFormatError
        from training.data.project_sets import public_set_dir, set_name
        from training.evaluation.match_eval import evaluate_dataset

        if not Path(dataset).is_dir() and set_name(dataset) is None:
            raise CliError(f"no dataset directory at {dataset}")
        try:
            public_set_dir(dataset, bench_data)  # a project set's public part, before loading any model
        except BeirFormatError as exc:
            raise CliError(str(exc)) from None
        encoder = load_configured_encoder(Settings())
        teacher_encoder = cached_teacher(Settings(), vector_cache, cached_only) if teacher else None
        try:
            result = evaluate_dataset(
                dataset,
                encoder,
                split=split,
                dense_weight=dense_weight,
                show_progress=not as_json,
                bench_dir=bench_data,
                drop_generic=drop_generic or None,
                teacher=teacher_encoder,
            )
        except BeirFormatError as exc:
            raise CliError(str(exc)) from None
        typer.echo(json.dumps(result, ensure_ascii=False))
