"""The store's schema version (Alembic revisions under matcher/store/migrations): upgrade, stamp, check.

A store made by `create_all` before revisions existed (no alembic_version table) is stamped as the baseline when
its tables match it; a store at another revision than the code's is refused until `matcher migrate` ran."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from matcher.errors import ServiceUnavailable
from matcher.store.db import add_missing_columns, import_table_modules

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001_baseline"
VERSION_TABLE = "alembic_version"
# tables later revisions added: a store made by create_all without them predates them (it is the baseline)
# (in revision order: a store holding the tables up to one revision's and none after is at that revision)
LATER_TABLES = {"change_log": "0002_change_log", "job": "0003_jobs"}
# PostgreSQL advisory lock key held while one process checks, adopts or upgrades the schema, so that replicas
# starting together on a new store do not race to create it ("pmschema" as a number)
MIGRATION_LOCK = 0x706D736368656D61


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """One process at a time through schema checks and upgrades: on PostgreSQL a session advisory lock on a
    connection of its own, on SQLite an exclusive lock on a file beside the database (Alembic's DDL there is not
    transactional); either is released when done or when the process dies."""
    if engine.dialect.name != "postgresql":
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            conn.commit()


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The revision this code expects."""
    return str(ScriptDirectory.from_config(_config()).get_current_head())


def current(engine: Engine) -> str | None:
    """The store's revision; None when it has none (new, or made by create_all)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_config()).get_revision(revision) is not None
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
        return False


def missing_schema(engine: Engine) -> list[str]:
    """Tables and columns of the code's metadata that the store lacks (empty: its tables match)."""
    import_table_modules()
    present = inspect(engine)
    missing: list[str] = []
    for table in SQLModel.metadata.sorted_tables:
        if not present.has_table(table.name):
            missing.append(table.name)
            continue
        have = {c["name"] for c in present.get_columns(table.name)}
        missing += [f"{table.name}.{c.name}" for c in table.columns if c.name not in have]
    return missing


def has_tables(engine: Engine) -> bool:
    names = set(inspect(engine).get_table_names()) - {VERSION_TABLE}
    import_table_modules()
    return bool(names & set(SQLModel.metadata.tables))


def stamp(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        command.stamp(_config(conn), revision)


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Upgrade the store to the code's revision: a store without one is stamped as the baseline first (when
    its tables match), a new one is created. Returns (revision before, revision after)."""
    with migration_lock(engine):
        return _migrate(engine)


def _migrate(engine: Engine) -> tuple[str | None, str]:
    before = current(engine)
    if before is None and has_tables(engine):
        adopt(engine)
    elif before is not None and not _known(before):
        raise ServiceUnavailable(
            f"the store is at schema revision {before}, newer than this version of parkmatch ({head()}) knows; "
            "run a newer parkmatch / 数据库版本比本程序新，请使用更新的版本"
        )
    with engine.begin() as conn:
        command.upgrade(_config(conn), "head")
    return before, head()


def unrevisioned_revision(engine: Engine) -> str:
    """The revision a store made by create_all is at: the baseline, or the code's head when it already has every
    table a later revision added (create_all of this code made them)."""
    present = set(inspect(engine).get_table_names())
    revision = BASELINE
    for table, added_by in LATER_TABLES.items():
        if table not in present:
            break
        revision = added_by
    return revision


def adopt(engine: Engine) -> None:
    """Stamp a store made by create_all at its revision (unrevisioned_revision), once its tables match the
    baseline (nullable columns added since are added first); refuse one that does not."""
    add_missing_columns(engine)
    if missing := [m for m in missing_schema(engine) if m.split(".")[0] not in LATER_TABLES]:
        raise ServiceUnavailable(
            "the store has no schema revision and its tables do not match the baseline "
            f"(missing: {', '.join(missing[:5])}); run `matcher migrate` / 数据库结构不符，请运行 matcher migrate"
        )
    stamp(engine, unrevisioned_revision(engine))


def check_revision(engine: Engine) -> None:
    """At start: a store made by create_all is adopted as the baseline; a new store is created at head; one at
    another revision than the code's is refused in one line."""
    revision = current(engine)
    if revision is None:
        with migration_lock(engine):  # replicas starting together on a new store: one creates it
            if current(engine) is None:
                if has_tables(engine):
                    adopt(engine)
                else:
                    _migrate(engine)
        revision = current(engine)
    expected = head()
    if revision != expected:  # maybe another process is upgrading it right now: read it again once it is done
        with migration_lock(engine):
            revision = current(engine)
    if revision != expected:
        relation = "newer than" if not _known(revision or "") else "older than"
        raise ServiceUnavailable(
            f"the store's schema revision {revision} is {relation} this code's {expected}: "
            "run `matcher migrate` / 数据库版本与程序不符，请运行 matcher migrate"
        )
