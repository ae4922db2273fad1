"""The `matcher` command line: serve, demo, import, keys, users, reindex, match, eval, train, digest, report,
snapshot, feed, worker, job.

Each command group lives in matcher/cli/<name>.py and exposes `register(app)`. Errors print one
readable line to stderr and exit non-zero; stack traces only with MATCHER_LOG_LEVEL=DEBUG."""

from __future__ import annotations

import logging
import sys

import typer

from matcher.cli import (
    calibrate,
    cluster,
    demo,
    digest,
    evaluate,
    feed,
    imports,
    keys,
    migrate,
    models,
    serve,
    snapshots,
    train,
    users,
    worker,
)
from matcher.cli.errors import CliError
from matcher.errors import MatcherError

app = typer.Typer(
    name="matcher",
    help="parkmatch: match park enterprises and needs with research results, scenarios, funds and incubators.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


for _group in (
    serve,
    cluster,
    migrate,
    keys,
    users,
    evaluate,
    calibrate,
    imports,
    demo,
    digest,
    train,
    models,
    snapshots,
    feed,
    worker,
):
    _group.register(app)


def main(argv: list[str] | None = None) -> None:
    from matcher.logs import configure_logging
    from matcher.settings import Settings

    try:
        settings = Settings()
        level = settings.log_level.upper()
        configure_logging(settings, keep_existing=True)
    except Exception:  # noqa: BLE001 - a bad setting is reported by the command itself
        level = "INFO"
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv, standalone_mode=False)
    except SystemExit:
        raise
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.code)
    except MatcherError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected: one line, no trace
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):  # click/typer usage errors
            exc.show()
            sys.exit(exc.exit_code)
        if level == "DEBUG":
            raise
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
