"""`matcher demo`: load the demo data set into the configured store, build the shipped default encoder if
missing, and print an admin API key for the demo tenant on the last line."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from matcher.settings import Settings

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        results: int = typer.Option(
            3000, "--results", "-n", min=0, help="research results to take from the CSL corpus (0 = all)"
        ),
        corpus: Path = typer.Option(
            None,
            "--corpus",
            envvar="MATCHER_DEMO_CORPUS",
            help="the CSL corpus (default: ../shared/data/research_results/csl_corpus.jsonl beside the repository); "
            "a missing path loads the project's own records only",
            show_default=False,
        ),
        tenant: str = typer.Option("demo-park", "--tenant", help="tenant that owns the demo records"),
        retrain: bool = typer.Option(
            False, "--retrain", help="build the shipped default encoder even if it exists"
        ),
        skip_encoder: bool = typer.Option(False, "--skip-encoder", help="do not build the default encoder"),
    ) -> None:
        """Load the demo data (idempotent: re-running updates records, never duplicates them)."""
        from matcher.cli.errors import CliError
        from matcher.cli.imports import TENANT_PATTERN
        from matcher.demo.dataset import demo_admin_key, find_corpus, load_demo
        from matcher.store.db import init_db, make_engine

        if not TENANT_PATTERN.match(tenant):
            raise CliError(f"tenant: {tenant!r} is not a tenant id (lower-case letters, digits, '-' and '_')")
        settings = Settings()
        found = find_corpus(corpus)
        engine = make_engine(settings)
        try:
            init_db(engine)
            if found is None:
                where = f" at {corpus}" if corpus else ""
                typer.echo(
                    f"CSL corpus not found{where}: loading the project's own demo records only", err=True
                )
            else:
                typer.echo(f"CSL corpus: {found} ({'all' if results == 0 else results} results)", err=True)
            summary = load_demo(engine, tenant=tenant, results=results, corpus=found)
            for name, t in summary.resources.items():
                typer.echo(
                    f"{name}: {t.rows} ({t.created} created, {t.updated} updated, {t.unchanged} unchanged"
                    + (f", {t.rejected} rejected" if t.rejected else "")
                    + ")"
                )
            for noun, counts in (("enterprises", summary.enterprises), ("needs", summary.needs)):
                total = sum(counts.values())
                typer.echo(
                    f"{noun}: {total} (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ")"
                )
            for line in summary.rejected[:20]:
                typer.echo(f"rejected: {line}", err=True)
            if skip_encoder:
                typer.echo("default encoder: skipped (--skip-encoder)")
            else:
                from matcher.cli.models import ensure_shipped_encoder
                from matcher.models.encoder import encoder_location

                if settings.encoder == "default" and settings.default_encoder_dir.exists() and not retrain:
                    typer.echo(f"default encoder: {settings.default_encoder_dir} (trained for this store)")
                else:
                    ensure_shipped_encoder(settings, rebuild=retrain, show_progress=True)
                    typer.echo(f"default encoder: {encoder_location(settings)}")
            key = demo_admin_key(engine, settings, tenant)
        finally:
            engine.dispose()
        typer.echo(
            f"admin API key for tenant {tenant} (also saved in {settings.data_dir / 'demo-admin.key'}):"
        )
        typer.echo(key)
