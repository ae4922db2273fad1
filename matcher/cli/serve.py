"""`matcher serve`: serve what is in the store over HTTP (never loads data by itself)."""

from __future__ import annotations

import typer


def check_store(settings) -> None:
    """A store at another schema revision than this code's is refused here, in one line (`matcher migrate`)."""
    from matcher.store.db import make_engine
    from matcher.store.schema import check_revision

    engine = make_engine(settings)
    try:
        check_revision(engine)
    finally:
        engine.dispose()


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="interface to bind"),
        port: int = typer.Option(8000, help="port"),
        workers: int = typer.Option(1, help="worker processes"),
    ) -> None:
        """Serve the HTTP API on the configured store (the shipped default encoder is built first if missing)."""
        import uvicorn

        from matcher.cli.http_limits import HeadLimitedHttpTools, head_limit
        from matcher.cli.models import preflight
        from matcher.settings import Settings

        settings = Settings()
        # refused here, in one line, rather than as a trace from inside the server's start-up
        preflight(settings)
        check_store(settings)
        uvicorn.run(
            "api.main:app",
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            log_config=None,  # the server's lines go through configure_logging's handler (text or JSON)
            proxy_headers=True,
            http=HeadLimitedHttpTools,
            # read by h11 and by HeadLimitedHttpTools alike: a head past this is refused before it is buffered
            h11_max_incomplete_event_size=head_limit(settings.max_header_bytes),
        )
