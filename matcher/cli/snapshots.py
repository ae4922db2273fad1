"""`matcher snapshot save|list`: index snapshots in the shared directory replicas start from.

A running replica writes them itself (MATCHER_SNAPSHOT_EVERY_S); `save` writes one now from the data dir's
indexes (reconciled with the store first), e.g. before adding replicas; `list` shows what a new replica would
find and which ones it would skip, and why."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from matcher.cli.errors import CliError
from matcher.settings import Settings

snapshot_app = typer.Typer(help="index snapshots that new replicas start from", no_args_is_help=True)


def _root(settings: Settings, to: Path | None) -> Path:
    root = to or settings.snapshot_dir
    if root is None:
        raise CliError("no snapshot directory: set MATCHER_SNAPSHOT_DIR or pass --to")
    return root


@snapshot_app.command("save")
def save(
    to: Path | None = typer.Option(None, "--to", help="snapshot directory (default MATCHER_SNAPSHOT_DIR)"),
    queue: bool = typer.Option(
        False, "--queue", help="have a task worker write it (its MATCHER_SNAPSHOT_DIR)"
    ),
) -> None:
    """Reconcile the data dir's indexes with the store, then write them as a new snapshot."""
    if queue:
        from matcher.cli.models import queue_job

        queue_job("snapshot", "parkmatch.snapshot")
        return
    from matcher.domain.taxonomy import default_taxonomy
    from matcher.indexing.indexer import Indexer
    from matcher.indexing.snapshots import write_snapshot
    from matcher.models.encoder import load_configured_encoder
    from matcher.store.db import make_engine
    from matcher.store.schema import check_revision, current

    settings = Settings()
    root = _root(settings, to)
    encoder = load_configured_encoder(settings)
    db = make_engine(settings)
    try:
        check_revision(db)
        indexer = Indexer(settings.model_copy(update={"snapshot_dir": None}), db, default_taxonomy(), encoder)
        indexer.start(background_save_s=0)
        seq = indexer.feed_seq  # the change feed's head as read before the store's records
        try:
            info = write_snapshot(
                indexer, root, seq=seq, schema_revision=current(db) or "", keep=settings.snapshot_keep
            )
        finally:
            indexer.close()
    finally:
        db.dispose()
    typer.echo(json.dumps(info.as_dict(), ensure_ascii=False))


@snapshot_app.command("list")
def list_(
    to: Path | None = typer.Option(None, "--to", help="snapshot directory (default MATCHER_SNAPSHOT_DIR)"),
) -> None:
    """The snapshots, newest first, each with whether this configuration's replica could start from it."""
    from matcher.indexing.snapshots import list_snapshots
    from matcher.models.encoder import load_configured_encoder
    from matcher.store.db import make_engine
    from matcher.store.schema import current

    settings = Settings()
    root = _root(settings, to)
    encoder = load_configured_encoder(settings)
    db = make_engine(settings)
    try:
        revision = current(db) or ""
    finally:
        db.dispose()
    for snap in list_snapshots(root):
        reason = snap.unfit_reason(
            model_id=encoder.model_id, dimension=encoder.dimension, schema_revision=revision
        )
        typer.echo(
            json.dumps({**snap.as_dict(), "fits": reason is None, "why_not": reason}, ensure_ascii=False)
        )


def register(app: typer.Typer) -> None:
    app.add_typer(snapshot_app, name="snapshot")
