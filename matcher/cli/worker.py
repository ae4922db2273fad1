"""`matcher worker`: a Celery worker for the background jobs (matcher/jobs) on MATCHER_BROKER_URL."""

from __future__ import annotations

import typer

from matcher.cli.errors import CliError


def register(app: typer.Typer) -> None:
    @app.command()
    def worker(
        concurrency: int = typer.Option(1, min=1, max=64, help="worker processes"),
        queues: str = typer.Option(None, help="comma-separated queues to consume (default: parkmatch)"),
        pool: str = typer.Option("prefork", help="prefork, solo or threads"),
        hostname: str = typer.Option(
            None, help="the worker's node name (default celery@<host>); unique per host"
        ),
    ) -> None:
        """Run background jobs: digest chunks, large imports, reindexing, snapshots, webhook deliveries."""
        import logging

        from matcher.jobs.app import broker_reachable, broker_url, code_version, configure
        from matcher.settings import Settings

        settings = Settings()
        why = broker_reachable(settings)
        if why is not None:
            raise CliError(f"the task broker {_safe(broker_url(settings))} does not answer: {why}")
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # its import-time chatter
        from matcher.store.db import make_engine
        from matcher.store.schema import check_revision

        db = make_engine(settings)
        try:
            check_revision(db)  # a worker of another schema revision than the store's does not start
        finally:
            db.dispose()
        app_ = configure(settings)
        typer.echo(f"worker version {code_version()} on {_safe(broker_url(settings))}", err=True)
        argv = [
            "worker",
            f"--concurrency={concurrency}",
            f"--pool={pool}",
            "--loglevel=INFO",
            "--without-gossip",
        ]
        argv += ["--without-mingle", "--without-heartbeat"]
        if queues:
            argv.append(f"--queues={queues}")
        if hostname:
            argv.append(f"--hostname={hostname}")
        app_.worker_main(argv)

    @app.command()
    def job(
        job_id: str = typer.Argument(..., help="the job's id, as a queued command or a 202 answer gave it"),
        tenant: str = typer.Option(None, help="refuse a job of another tenant"),
    ) -> None:
        """Show one background job (state, progress, result or error) as JSON, as GET /v1/jobs/{id} does."""
        import json

        from matcher.jobs import store as jobs
        from matcher.settings import Settings
        from matcher.store.db import make_engine

        db = make_engine(Settings())
        try:
            found = jobs.get(db, job_id, tenant=tenant)
        finally:
            db.dispose()
        if found is None:
            raise CliError(f"no job {job_id!r}" + (f" of tenant {tenant!r}" if tenant else ""))
        typer.echo(json.dumps(jobs.as_dict(found), ensure_ascii=False))


def _safe(url: str) -> str:
    """The broker URL without its password."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))
