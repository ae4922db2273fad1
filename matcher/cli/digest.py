"""`matcher digest run|preview`: this period's recommendation emails, exactly once; or one rendered, unsent."""

from __future__ import annotations

import json
from typing import Any

import typer


def _setup(source: str) -> tuple[Any, Any, Any]:
    from matcher.cli.errors import CliError
    from matcher.digests.sources import EngineSource, KeywordSource
    from matcher.settings import Settings
    from matcher.store.db import init_db, make_engine

    settings = Settings()
    db = make_engine(settings)
    init_db(db)
    if source == "keyword":
        return settings, db, KeywordSource(db)
    if source != "engine":
        raise CliError(f"--source {source!r}: expected engine or keyword")
    from matcher.domain.taxonomy import default_taxonomy
    from matcher.matching.engine import MatchEngine
    from matcher.models.encoder import load_configured_encoder

    engine = MatchEngine(settings, db, default_taxonomy(), load_configured_encoder(settings))
    engine.start(background_save_s=0)
    return settings, db, EngineSource(engine)


def _check_period(period: str | None) -> None:
    from matcher.cli.errors import CliError
    from matcher.digests.compose import period_start

    if period is not None:
        try:
            period_start(period)
        except ValueError as exc:
            raise CliError(str(exc)) from None


def _queue(period: str | None, tenant: str | None, source: str, sender: str, wait: bool) -> None:
    from datetime import UTC, datetime

    from matcher.cli.errors import CliError
    from matcher.digests.compose import period_of
    from matcher.digests.queue import queue_digests, wait_for
    from matcher.errors import ServiceUnavailable
    from matcher.settings import Settings
    from matcher.store.db import make_engine
    from matcher.store.schema import check_revision

    settings = Settings()
    db = make_engine(settings)
    try:
        check_revision(db)
        period = period or period_of(datetime.now(UTC).date())
        try:
            out = queue_digests(settings, db, period, tenant=tenant, source=source, sender=sender)
        except ServiceUnavailable as exc:
            raise CliError(exc.detail) from None
        if wait:
            out["report"] = wait_for(db, out["jobs"])
    finally:
        db.dispose()
    typer.echo(json.dumps(out, ensure_ascii=False))


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Weekly recommendation emails.", no_args_is_help=True)
    app.add_typer(group, name="digest")

    @group.command("run")
    def run_cmd(
        period: str = typer.Option(None, help="ISO week such as 2026-W48; default the current week"),
        dry_run: bool = typer.Option(False, "--dry-run", help="compose and render; record and send nothing"),
        tenant: str = typer.Option(None, help="only this tenant's enterprises"),
        source: str = typer.Option(
            "engine", help="engine (the match engine) or keyword (exact, small stores)"
        ),
        sender: str = typer.Option("smtp", help="smtp (MATCHER_SMTP_*) or log (print instead of sending)"),
        queue: bool = typer.Option(
            False,
            "--queue",
            help="split the enterprises into chunks (MATCHER_DIGEST_CHUNK) and queue one task each",
        ),
        wait: bool = typer.Option(
            False, "--wait", help="with --queue: wait for the jobs and print their total"
        ),
    ) -> None:
        """Send this period's digests. Safe to run again (e.g. hourly): what was sent is never sent twice,
        failed sends are retried with backoff, an interrupted run is resumed."""
        from matcher.cli.errors import CliError

        if queue:
            if dry_run:
                raise CliError("--dry-run runs here; it cannot be combined with --queue")
            _check_period(period)
            _queue(period, tenant, source, sender, wait)
            return
        from matcher.digests.compose import DigestComposer
        from matcher.digests.runner import DigestRunner
        from matcher.digests.send import make_sender

        _check_period(period)
        settings, db, src = _setup(source)
        try:
            mail = make_sender(settings, sender)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        runner = DigestRunner(settings, db, DigestComposer(src, public_url=settings.public_url), mail)
        try:
            report = runner.run(period, dry_run=dry_run, tenant=tenant)
        finally:
            mail.close()
            db.dispose()
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        if report.errors and not (report.sent or report.retry_later or report.already_done):
            raise typer.Exit(1)

    @group.command(
        "preview", help="Render one enterprise's digest to stdout without sending or recording it."
    )
    def preview_cmd(
        enterprise: int = typer.Option(..., "--enterprise", help="enterprise id"),
        period: str = typer.Option(None, help="ISO week; default the current week"),
        fmt: str = typer.Option("text", "--format", help="text, html or json"),
        source: str = typer.Option("engine", help="engine or keyword"),
    ) -> None:
        """Render one enterprise's digest to stdout without sending or recording it."""
        from sqlmodel import Session

        from matcher.cli.errors import CliError
        from matcher.digests.compose import DigestComposer
        from matcher.digests.runner import DigestRunner
        from matcher.digests.send import LoggingSender
        from matcher.domain.tables import Enterprise

        if fmt not in ("text", "html", "json"):
            raise CliError("--format: expected text, html or json")
        _check_period(period)
        settings, db, src = _setup(source)
        runner = DigestRunner(
            settings, db, DigestComposer(src, public_url=settings.public_url), LoggingSender()
        )
        with Session(db) as session:
            ent = session.get(Enterprise, enterprise)
            if ent is None:
                raise CliError(f"no enterprise with id {enterprise}")
            digest, rendered = runner.preview(session, ent, period)
        db.dispose()
        if fmt == "json":
            typer.echo(
                json.dumps(
                    {
                        "subject": rendered.subject,
                        "text": rendered.text,
                        "html": rendered.html,
                        "items": [i.to_dict() for i in digest.items],
                    },
                    ensure_ascii=False,
                )
            )
        else:
            typer.echo(f"Subject: {rendered.subject}\n\n{rendered.text if fmt == 'text' else rendered.html}")
