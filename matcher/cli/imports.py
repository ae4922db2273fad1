"""`matcher import FILE`: bulk import of resources from CSV, JSON Lines or XLSX into a tenant.

Exit status: 0 when the file was processed (rejected rows are listed, the rest are written), 1 when the file
itself is unusable (missing, unreadable, wrong type, undecodable, too large, bad option), 3 with --strict when
any row was rejected."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
STRICT_EXIT = 3
SHOWN_REJECTIONS = 50
PROGRESS_MIN_ROWS = 500


def _read(path: Path, limit: int) -> bytes:
    from matcher.cli.errors import CliError

    if not path.exists():
        raise CliError(f"no such file: {path}")
    if path.is_dir():
        raise CliError(f"{path} is a directory, not a file")
    try:
        size = path.stat().st_size
        if size > limit:
            raise CliError(
                f"{path} is {size:,} bytes; the import limit is {limit:,} (MATCHER_MAX_IMPORT_BYTES)"
            )
        return path.read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None


def register(app: typer.Typer) -> None:
    @app.command("import")
    def import_command(
        file: Path = typer.Argument(
            ..., help="CSV (UTF-8 or GBK), JSON Lines or XLSX file", show_default=False
        ),
        kind: str = typer.Option(
            None,
            "--kind",
            "-k",
            help="result, scenario, fund or incubator (or 科技成果, 应用场景 ...); "
            "optional when the rows have a kind/类型 column",
        ),
        tenant: str = typer.Option("default", "--tenant", "-t", help="tenant that owns the imported records"),
        mapping: Path = typer.Option(None, "--mapping", "-m", help='JSON file {"column header": "field"}'),
        encoding: str = typer.Option(None, "--encoding", help="force a text encoding (default: detected)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="validate and report, write nothing"),
        as_json: bool = typer.Option(False, "--json", help="print the whole per-row report as JSON"),
        strict: bool = typer.Option(False, "--strict", help=f"exit {STRICT_EXIT} when any row is rejected"),
    ) -> None:
        """Import resources; rows with an external_id already in the tenant are updated (see docs/import.md)."""
        from sqlmodel import Session

        from matcher.cli.errors import CliError
        from matcher.errors import MatcherError
        from matcher.ingest.columns import load_mapping
        from matcher.ingest.importer import check_kind, import_file
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine
        from matcher.store.keys import Caller

        settings = Settings()
        if not TENANT_PATTERN.match(tenant):
            raise CliError(f"tenant: {tenant!r} is not a tenant id (lower-case letters, digits, '-' and '_')")
        try:
            check_kind(kind)
            columns = load_mapping(_read(mapping, 1_000_000)) if mapping else None
        except MatcherError as exc:
            raise CliError(exc.detail) from None
        data = _read(file, settings.max_import_bytes)

        bar = None

        def on_parsed(parsed) -> None:
            nonlocal bar
            if len(parsed.records) >= PROGRESS_MIN_ROWS and not as_json:
                from tqdm import tqdm

                bar = tqdm(
                    total=len(parsed.records),
                    unit="row",
                    desc=f"importing {file.name}",
                    leave=False,
                    disable=None,
                )

        engine = make_engine(settings)
        try:
            init_db(engine)
            with Session(engine, expire_on_commit=False) as session:
                report = import_file(
                    session,
                    caller=Caller(tenant=tenant, role="admin"),
                    data=data,
                    settings=settings,
                    filename=file.name,
                    kind=kind,
                    mapping=columns,
                    encoding=encoding,
                    dry_run=dry_run,
                    progress=lambda n: bar.update(n) if bar is not None else None,
                    on_parsed=on_parsed,
                )
        except MatcherError as exc:
            raise CliError(f"{file}: {exc.detail}") from None
        finally:
            if bar is not None:
                bar.close()
            engine.dispose()

        if as_json:
            typer.echo(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2))
        else:
            rejected = [r for r in report.rows if r.status == "rejected"]
            for r in rejected[:SHOWN_REJECTIONS]:
                ext = f" ({r.external_id})" if r.external_id else ""
                typer.echo(f"row {r.row}{ext}: rejected: {r.reason}")
            if len(rejected) > SHOWN_REJECTIONS:
                typer.echo(f"... and {len(rejected) - SHOWN_REJECTIONS} more rejected rows (see --json)")
            if report.ignored_columns:
                typer.echo(f"ignored columns: {', '.join(report.ignored_columns)}")
            t = report.totals
            verb = "would import" if dry_run else "imported"
            typer.echo(
                f"{verb} {file.name} into {tenant}: {t.rows} rows, {t.created} created, {t.updated} updated, "
                f"{t.unchanged} unchanged, {t.rejected} rejected"
            )
        if strict and report.totals.rejected:
            raise CliError(f"{report.totals.rejected} rows rejected (--strict)", code=STRICT_EXIT)
