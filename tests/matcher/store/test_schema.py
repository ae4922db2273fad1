"""Schema revisions: the baseline equals the tables' metadata, `matcher migrate` upgrades, a store made by
create_all is adopted as the baseline, a store at another revision is refused until migrated."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from api.app import create_app
from matcher.cli.main import main
from matcher.errors import ServiceUnavailable
from matcher.settings import Settings
from matcher.store import schema
from matcher.store.db import import_table_modules, make_engine


@pytest.fixture
def empty(settings: Settings) -> Iterator[Engine]:
    """An engine on a store without any table (the PostgreSQL schema of the run is emptied of its tables)."""
    db = make_engine(settings)
    if db.dialect.name == "postgresql":
        with db.begin() as conn:
            for name in inspect(conn).get_table_names():
                conn.execute(text(f'DROP TABLE IF EXISTS "{name}" CASCADE'))
    yield db
    db.dispose()


def _set_revision(db: Engine, revision: str) -> None:
    with db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


pytestmark = pytest.mark.usefixtures("store")


def test_migrate_makes_the_tables_of_the_metadata(empty: Engine) -> None:
    before, after = schema.migrate(empty)
    assert before is None and after == schema.head() == schema.current(empty)
    import_table_modules()
    with empty.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    assert schema.migrate(empty) == (after, after)  # twice is a no-op


def test_a_store_made_by_create_all_is_adopted_at_its_revision(empty: Engine) -> None:
    import_table_modules()
    SQLModel.metadata.create_all(empty)
    assert schema.current(empty) is None
    schema.check_revision(empty)  # every table of this code's metadata: at head
    assert schema.current(empty) == schema.head()


def test_a_store_made_before_the_change_feed_is_the_baseline_and_migrates(empty: Engine) -> None:
    import_table_modules()
    SQLModel.metadata.create_all(empty)
    with empty.begin() as conn:
        conn.execute(text('DROP TABLE "change_log"'))
        conn.execute(text('DROP TABLE "job"'))  # added later still (0003_jobs)
    with pytest.raises(ServiceUnavailable, match="older than"):
        schema.check_revision(empty)  # adopted as the baseline, then refused until migrated
    assert schema.current(empty) == schema.BASELINE
    assert schema.migrate(empty) == (schema.BASELINE, schema.head())
    assert "change_log" in inspect(empty).get_table_names()
    with empty.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    schema.check_revision(empty)


def test_a_create_all_store_missing_a_table_is_refused(empty: Engine) -> None:
    import_table_modules()
    SQLModel.metadata.create_all(empty)
    with empty.begin() as conn:
        conn.execute(text('DROP TABLE "digestlog"'))
    with pytest.raises(ServiceUnavailable, match="digestlog"):
        schema.check_revision(empty)
    assert schema.current(empty) is None


def test_a_newer_or_older_revision_is_refused_in_one_line(empty: Engine, monkeypatch) -> None:
    schema.migrate(empty)
    _set_revision(empty, "9999_from_a_later_version")
    with pytest.raises(ServiceUnavailable) as newer:
        schema.check_revision(empty)
    assert "newer" in newer.value.detail and "matcher migrate" in newer.value.detail
    assert "\n" not in newer.value.detail
    with pytest.raises(ServiceUnavailable, match="newer"):
        schema.migrate(empty)

    _set_revision(empty, schema.BASELINE)
    monkeypatch.setattr(schema, "head", lambda: "0002_next")
    with pytest.raises(ServiceUnavailable, match=r"older than this code's 0002_next: run `matcher migrate`"):
        schema.check_revision(empty)


def test_the_service_refuses_to_start_on_another_revision(settings: Settings, empty: Engine) -> None:
    with TestClient(create_app(settings, load_engine=False)) as client:  # a new store is created at head
        assert client.get("/healthz").status_code == 200
    assert schema.current(empty) == schema.head()
    _set_revision(empty, "9999_from_a_later_version")
    with pytest.raises(ServiceUnavailable, match="matcher migrate"):
        with TestClient(create_app(settings, load_engine=False)):
            pass


def test_matcher_migrate_command(settings: Settings, empty: Engine, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MATCHER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MATCHER_DATABASE_URL", settings.sqlalchemy_url)
    with pytest.raises(SystemExit) as done:
        main(["migrate"])
    assert done.value.code == 0
    assert f"revision {schema.head()} (was none)" in capsys.readouterr().out
    assert schema.current(empty) == schema.head()
    _set_revision(empty, "9999_from_a_later_version")
    with pytest.raises(SystemExit) as refused:
        main(["migrate"])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and err.count("\n") == 1 and "newer" in err


def test_replicas_starting_together_on_a_new_store_create_it_once(empty: Engine, settings: Settings) -> None:
    """Four processes' start-up checks at once (threads, each with its own engine) on a store without tables:
    all pass, and the store ends at the code's revision."""
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        db = make_engine(settings)
        try:
            barrier.wait()
            schema.check_revision(db)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            db.dispose()

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert schema.current(empty) == schema.head()


def test_a_store_at_0002_upgrades_to_the_jobs_revision_keeping_every_record(empty: Engine) -> None:
    """A store made and filled at 0002_change_log: `migrate` adds the job table and digestlog.claimed_at, and
    every record (and digest log row) is still there, on SQLite and PostgreSQL."""
    from alembic import command

    with empty.begin() as conn:
        command.upgrade(schema._config(conn), "0002_change_log")
    assert schema.current(empty) == "0002_change_log"
    assert "job" not in inspect(empty).get_table_names()
    with empty.begin() as conn:
        conn.execute(
            text("INSERT INTO tenant (id, name, created_at) VALUES ('park', 'Park', CURRENT_TIMESTAMP)")
        )
        for i in (1, 2, 3):
            conn.execute(
                text(
                    "INSERT INTO enterprise (id, tenant_id, name, description, industries, digest_kinds, "
                    "digest_frequency, unsubscribed, language, visibility, created_at, updated_at) "
                    "VALUES (:i, 'park', :n, 'd', '[]', '[]', 'weekly', false, 'zh', 'tenant', CURRENT_TIMESTAMP, "
                    "CURRENT_TIMESTAMP)"
                ),
                {"i": i, "n": f"E{i}"},
            )
        conn.execute(
            text(
                "INSERT INTO digestlog (enterprise_id, period, status, items, attempts, created_at) "
                "VALUES (1, '2026-W48', 'sending', '[]', 1, CURRENT_TIMESTAMP)"
            )
        )
    assert schema.migrate(empty) == ("0002_change_log", schema.head())
    assert schema.head() == "0003_jobs"
    with empty.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM enterprise")).scalar() == 3
        row = conn.execute(text("SELECT status, claimed_at FROM digestlog")).one()
        assert tuple(row) == ("sending", None)
        assert conn.execute(text("SELECT count(*) FROM job")).scalar() == 0
        assert compare_metadata(MigrationContext.configure(conn), SQLModel.metadata) == []
    schema.check_revision(empty)
