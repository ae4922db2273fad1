"""Engine and sessions: SQLite file in WAL mode by default, PostgreSQL by one URL."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine

from matcher.settings import Settings

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL; larger ones can only be "not found"

# modules whose tables belong to the schema; each registers its SQLModel classes on import
TABLE_MODULES = [
    "matcher.domain.tables",
    "matcher.notify.tables",
    "matcher.accounts.tables",
    "matcher.domain.park_tables",
    "matcher.store.feed",
    "matcher.jobs.tables",
]


def valid_id(value: int) -> bool:
    """Whether `value` can be a row id on every store (looking up a larger one fails on PostgreSQL)."""
    return 1 <= value <= MAX_ID


def import_table_modules() -> None:
    for name in TABLE_MODULES:
        importlib.import_module(name)


def make_engine(settings: Settings) -> Engine:
    importlib.import_module("matcher.store.feed")  # its session hooks log every write of an indexed record
    url = settings.sqlalchemy_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    return engine


def add_missing_columns(engine: Engine) -> None:
    """create_all makes missing tables only: a nullable column added to a table since a store was created is
    added here (same DDL on SQLite and PostgreSQL), so an existing store keeps working after an upgrade."""
    present = inspect(engine)
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if not present.has_table(table.name):
                continue
            have = {c["name"] for c in present.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have and column.nullable and column.server_default is None:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


def init_db(engine: Engine) -> None:
    """Create the tables of the code's metadata and stamp the store at the code's schema revision (tests and
    tools that start from nothing; a service checks the revision with store.schema.check_revision)."""
    from matcher.store.schema import current, has_tables, stamp, unrevisioned_revision

    import_table_modules()
    existed = has_tables(engine)
    SQLModel.metadata.create_all(engine)
    add_missing_columns(engine)
    if current(engine) is None:  # a store made before revisions existed is at the baseline, a new one at head
        stamp(engine, unrevisioned_revision(engine) if existed else "head")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error (all-or-nothing units of work)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
