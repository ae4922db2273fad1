"""`matcher encoder build|info` and `matcher reindex`: the shipped default encoder, and rebuilding the indexes.

The shipped default is built once per machine into ``MATCHER_MODEL_CACHE_DIR``: the packaged multilingual teacher
is converted to a sentence-transformers directory (seconds), then the static student is distilled from it (a few
CPU minutes). `matcher serve` and `matcher demo` build it when it is missing; `make install` builds it ahead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import typer

from matcher.settings import Settings

encoder_app = typer.Typer(help="the shipped default encoder", no_args_is_help=True)


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """One builder per cache folder across processes (a second `matcher serve` waits for the first's build)."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".build.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _bar(desc: str, show: bool):
    from tqdm import tqdm

    state: dict[str, object] = {}

    def update(done: int, total: int) -> None:
        if not show:
            return
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit="word", file=sys.stderr, leave=True)
        bar.n = done  # type: ignore[attr-defined]
        bar.refresh()  # type: ignore[attr-defined]
        if done >= total:
            bar.close()  # type: ignore[attr-defined]

    return update


def ensure_shipped_encoder(
    settings: Settings, *, rebuild: bool = False, show_progress: bool = True, keep_teacher: bool = False
) -> Path:
    """The shipped default student, built from the packaged teacher when missing (or when ``rebuild``). The
    converted teacher (465 MB) is removed afterwards unless ``keep_teacher``: it is rebuilt from the package in
    seconds when wanted (`matcher encoder build --keep-teacher`)."""
    import shutil

    from embeddings.encoders.e5_package import PackageModelError, build_model_dir
    from embeddings.encoders.sentence import load_encoder
    from matcher.cli.errors import CliError
    from matcher.models.encoder import encoder_present, shipped_student_dir, shipped_teacher_dir

    target = shipped_student_dir(settings)
    if encoder_present(target) and not rebuild and not keep_teacher:
        return target
    try:
        from training.encoders.distil import DistilRecipe, distil_static_student
    except ImportError as exc:  # pragma: no cover - a serving-only install without training/
        raise CliError(f"cannot build the default encoder: {exc}") from None
    with _build_lock(settings.model_cache_dir):
        if encoder_present(target) and not rebuild:  # built by another process while this one waited
            if keep_teacher:
                build_model_dir(shipped_teacher_dir(settings))
            return target
        if show_progress:
            typer.echo(f"building the default encoder in {target} (once per machine)", err=True)
        try:
            teacher_dir = build_model_dir(shipped_teacher_dir(settings))
        except (PackageModelError, OSError) as exc:
            raise CliError(f"cannot build the default encoder: {exc}") from None
        teacher = load_encoder(teacher_dir)
        distil_static_student(teacher, target, DistilRecipe(), progress=_bar("distilling", show_progress))
        if not keep_teacher:
            del teacher
            shutil.rmtree(teacher_dir, ignore_errors=True)
    return target


@encoder_app.command("build")
def build(
    rebuild: bool = typer.Option(False, "--rebuild", help="build again even when it is there"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    keep_teacher: bool = typer.Option(
        False,
        "--keep-teacher",
        help="keep (or make) the converted teacher beside it, e.g. to serve or calibrate it",
    ),
) -> None:
    """Build the shipped default encoder (the packaged teacher and its static student) into the model cache."""
    from matcher.models.encoder import shipped_teacher_dir

    settings = Settings()
    where = ensure_shipped_encoder(
        settings, rebuild=rebuild, show_progress=not quiet, keep_teacher=keep_teacher
    )
    typer.echo(f"default encoder: {where}")
    if keep_teacher:
        typer.echo(f"teacher: {shipped_teacher_dir(settings)}")


@encoder_app.command("info")
def info() -> None:
    """Which encoder the configuration selects, and whether it is there."""
    from matcher.models.encoder import encoder_location, encoder_present, encoder_recipe

    settings = Settings()
    location = encoder_location(settings)
    present = encoder_present(Path(location)) if Path(location).exists() else None
    out = {"configured": settings.encoder, "location": location, "present": present,
           "recipe": encoder_recipe(location) if present else None}  # fmt: skip
    typer.echo(json.dumps(out, ensure_ascii=False))


def preflight(settings: Settings, *, build_default: bool = True, show_progress: bool = True):
    """What `matcher serve` checks before it starts the server: the encoder loads (the shipped default is built
    if missing) and the saved indexes were made by it. Problems raise one readable line; returns the encoder."""
    from matcher.models.encoder import load_configured_encoder

    if settings.encoder == "default" and build_default:
        from matcher.models.encoder import encoder_location, encoder_present

        if not encoder_present(Path(encoder_location(settings))):
            ensure_shipped_encoder(settings, show_progress=show_progress)
    encoder = load_configured_encoder(settings)
    from matcher.indexing.pair import IndexPair

    for name in ("supply", "demand"):  # the manifests only: the server loads the vectors once, itself
        IndexPair(name, encoder, settings).check_model()
    return encoder


def queue_job(kind: str, task: str) -> None:
    """Queue a store-wide job (reindex, snapshot) for the task workers and print its id."""
    from matcher.cli.errors import CliError
    from matcher.errors import ServiceUnavailable
    from matcher.jobs.enqueue import enqueue
    from matcher.store.db import make_engine
    from matcher.store.schema import check_revision

    settings = Settings()
    db = make_engine(settings)
    try:
        check_revision(db)
        try:
            job = enqueue(settings, db, kind=kind, tenant=SYSTEM_TENANT, task=task, args=[])
        except ServiceUnavailable as exc:
            raise CliError(exc.detail) from None
    finally:
        db.dispose()
    typer.echo(json.dumps({"job": job.id, "kind": kind, "state": job.state}))


SYSTEM_TENANT = "_system"  # the tenant of store-wide jobs queued from the command line


def register(app: typer.Typer) -> None:
    app.add_typer(encoder_app, name="encoder")

    @app.command()
    def reindex(
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
        queue: bool = typer.Option(
            False,
            "--queue",
            help="run it on a task worker, which then writes an index snapshot for the replicas",
        ),
    ) -> None:
        """Rebuild both indexes from the store with the configured encoder (after changing MATCHER_ENCODER)."""
        if queue:
            queue_job("reindex", "parkmatch.reindex")
            return
        from matcher.domain.taxonomy import default_taxonomy
        from matcher.indexing.indexer import Indexer
        from matcher.models.encoder import load_configured_encoder
        from matcher.store.db import init_db, make_engine

        settings = Settings()
        encoder = load_configured_encoder(settings)
        db = make_engine(settings)
        try:
            init_db(db)
            indexer = Indexer(settings, db, default_taxonomy(), encoder)
            bar = _bar("indexing", not quiet)
            out = indexer.rebuild(progress=lambda _stage, done, total: bar(done, total))
        finally:
            db.dispose()
        typer.echo(json.dumps({"encoder": encoder.model_id, **out}, ensure_ascii=False))
