"""Index snapshots: a replica with an empty data dir starts from the newest snapshot that fits, re-indexes only
what changed after it, and says in one line why it skipped one that does not fit."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from matcher.cli.main import main
from matcher.indexing.snapshots import (
    INFO_NAME,
    SnapshotError,
    SnapshotScheduler,
    choose,
    list_snapshots,
    prune,
    restore,
    write_snapshot,
)
from matcher.settings import Settings
from matcher.store.schema import head

BODY = {
    "kind": "result",
    "description": "高导热薄膜的卷对卷制备方法，用于手机散热。",
    "industries": ["二维材料"],
    "details": {"holder": "某大学", "trl": 6},
}
TITLES = ["石墨烯导热膜制备技术", "碳纤维复合材料成型工艺", "锂电池隔膜涂覆设备"]
LATE = "钙钛矿叠层太阳能电池组件"
READY = re.compile(r"(\d+) resources \((\d+) re-indexed\), (\d+) demand records \((\d+) re-indexed\)")


def _replica(settings: Settings, data_dir: Path, snapshots: Path, **over) -> Settings:
    """Another serving process on the same store, with a data dir (indexes) of its own."""
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": settings.sqlalchemy_url,
            "snapshot_dir": snapshots,
            "snapshot_every_s": 0,
            **over,
        }
    )


def _reindexed(caplog) -> tuple[int, int]:
    found = [READY.search(r.getMessage()) for r in caplog.records]
    m = [x for x in found if x][-1]
    return int(m.group(2)), int(m.group(4))


def _write(client: TestClient, title: str, admin: dict[str, str]) -> int:
    r = client.post("/v1/resources", json=dict(BODY, title=title), headers=admin)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _top(client: TestClient, text: str, admin: dict[str, str]) -> int:
    res = client.post(
        "/v1/match", json={"text": text, "k": 3, "min_score": 0, "per_provider": 0}, headers=admin
    )
    assert res.status_code == 200, res.text
    return res.json()["matches"][0]["resource"]["id"]


def test_a_new_replica_starts_from_the_snapshot_and_indexes_only_what_changed_after_it(
    store, engine_settings, engine, headers, tmp_path, caplog
):
    """On SQLite and on PostgreSQL (`store`), as replicas share one."""
    admin = headers["admin"]
    shared = tmp_path / "snapshots"
    a = _replica(engine_settings, engine_settings.data_dir, shared)
    with TestClient(create_app(a)) as c:
        made = [_write(c, t, admin) for t in TITLES]
        indexer = c.app.state.app_state.matcher.indexer
        snap = write_snapshot(indexer, shared, seq=7, schema_revision=head())
        late = _write(c, LATE, admin)  # after the snapshot: the new replica must index it from the store
    assert snap.seq == 7 and snap.counts["supply"] == len(made)
    info = json.loads((snap.path / INFO_NAME).read_text())
    assert info["model_id"] == indexer.encoder.model_id and info["schema_revision"] == head()

    b = _replica(engine_settings, tmp_path / "replica-b", shared)
    with caplog.at_level(logging.INFO), TestClient(create_app(b)) as c:
        indexer_b = c.app.state.app_state.matcher.indexer
        assert indexer_b.seeded_from is not None and indexer_b.seeded_from.path == snap.path
        assert _reindexed(caplog) == (1, 0)  # the late resource only; the demand side was in the snapshot
        assert set(indexer_b.supply.dense.ids().tolist()) == {*made, late}
        assert _top(c, LATE, admin) == late
        assert _top(c, TITLES[1], admin) == made[1]


def test_a_replica_with_indexes_of_its_own_ignores_snapshots(engine_settings, engine, headers, tmp_path):
    shared = tmp_path / "snapshots"
    a = _replica(engine_settings, engine_settings.data_dir, shared)
    with TestClient(create_app(a)) as c:
        _write(c, TITLES[0], headers["admin"])
        write_snapshot(c.app.state.app_state.matcher.indexer, shared, seq=1, schema_revision=head())
    with TestClient(create_app(a)) as c:  # the same data dir again: its own saved indexes are used
        assert c.app.state.app_state.matcher.indexer.seeded_from is None


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("model_id", "other-encoder@0123456789ab", "built by encoder other-encoder@0123456789ab"),
        ("dimension", 999, "(999 dimensions)"),
        ("schema_revision", "0000_future", "taken at schema revision 0000_future"),
    ],
)
def test_a_snapshot_that_does_not_fit_is_skipped_in_one_line(
    engine_settings, engine, headers, tmp_path, caplog, field, value, why
):
    shared = tmp_path / "snapshots"
    a = _replica(engine_settings, engine_settings.data_dir, shared)
    with TestClient(create_app(a)) as c:
        rid = _write(c, TITLES[0], headers["admin"])
        snap = write_snapshot(c.app.state.app_state.matcher.indexer, shared, seq=3, schema_revision=head())
    info = json.loads((snap.path / INFO_NAME).read_text())
    info[field] = value
    (snap.path / INFO_NAME).write_text(json.dumps(info))

    b = _replica(engine_settings, tmp_path / "replica-b", shared)
    with caplog.at_level(logging.INFO), TestClient(create_app(b)) as c:
        assert c.app.state.app_state.matcher.indexer.seeded_from is None
        lines = [r.getMessage() for r in caplog.records if snap.path.name in r.getMessage()]
        assert len(lines) == 1 and "skipped" in lines[0] and why in lines[0], lines
        assert _reindexed(caplog)[0] == 1  # indexed from the store instead
        assert _top(c, TITLES[0], headers["admin"]) == rid


def _fake(root: Path, name: str, seq: int, **over) -> Path:
    path = root / name
    for side in ("supply", "demand"):
        (path / side / "vectors").mkdir(parents=True)
        (path / side / "vectors" / "marker").write_text(side)
    info = {
        "format": 1,
        "seq": seq,
        "model_id": "m@1",
        "dimension": 8,
        "schema_revision": "r1",
        "created_at": f"2026-01-01T00:00:{seq:02d}",
        "counts": {"supply": seq},
        **over,
    }
    (path / INFO_NAME).write_text(json.dumps(info))
    return path


def test_choose_takes_the_newest_that_fits_and_names_the_newer_ones_skipped(tmp_path, caplog):
    _fake(tmp_path, "s000000000001-a", 1)
    _fake(tmp_path, "s000000000005-b", 5, model_id="other@2")
    _fake(tmp_path, "s000000000003-c", 3)
    (tmp_path / "s000000000009-broken").mkdir()
    (tmp_path / "s000000000009-broken" / INFO_NAME).write_text("{not json")
    with caplog.at_level(logging.WARNING):
        snap, skipped = choose(tmp_path, model_id="m@1", dimension=8, schema_revision="r1")
    assert snap is not None and snap.seq == 3
    assert len(skipped) == 1 and "s000000000005-b (seq 5) skipped: built by encoder other@2" in skipped[0]
    assert "s000000000009-broken is unreadable" in caplog.text
    assert choose(tmp_path, model_id="m@1", dimension=8, schema_revision="r2")[0] is None


def test_prune_keeps_the_newest_and_clears_old_temporary_directories(tmp_path):
    for seq in range(1, 6):
        _fake(tmp_path, f"s{seq:012d}-x", seq)
    stale = tmp_path / ".tmp-s000000000009-crashed"
    stale.mkdir()
    hour_ago = time.time() - 7200
    os.utime(stale, (hour_ago, hour_ago))
    fresh = tmp_path / ".tmp-s000000000010-writing"
    fresh.mkdir()
    removed = prune(tmp_path, keep=2)
    assert [s.seq for s in list_snapshots(tmp_path)] == [5, 4]
    assert stale.name in removed and not stale.exists() and fresh.exists()


def test_restore_never_replaces_indexes_a_data_dir_already_has(tmp_path):
    snap_path = _fake(tmp_path / "shared", "s000000000001-a", 1)
    index_dir = tmp_path / "index"
    (index_dir / "supply").mkdir(parents=True)
    snap = list_snapshots(tmp_path / "shared")[0]
    with pytest.raises(SnapshotError, match="already holds indexes"):
        restore(snap, index_dir)
    empty = tmp_path / "empty-index"
    restore(snap, empty)
    assert (empty / "demand" / "vectors" / "marker").read_text() == "demand"
    assert not list(empty.glob(".tmp-*")) and snap_path.exists()


def test_the_scheduler_writes_only_when_the_indexes_changed(engine_settings, engine, headers, tmp_path):
    shared = tmp_path / "snapshots"
    with TestClient(create_app(engine_settings)) as c:
        indexer = c.app.state.app_state.matcher.indexer
        seq = [11]
        sched = SnapshotScheduler(
            indexer, shared, every_s=0, keep=5, schema_revision=head(), seq=lambda: seq[0]
        )
        first = sched.maybe_write()
        assert first is not None and first.seq == 11
        assert sched.maybe_write() is None  # nothing changed
        _write(c, TITLES[2], headers["admin"])
        seq[0] = 12
        second = sched.maybe_write()
        assert (
            second is not None and second.seq == 12 and second.counts["supply"] == first.counts["supply"] + 1
        )
        indexer.save()  # a periodic save in between still counts as a change since the last snapshot
        assert sched.maybe_write() is None
    assert [s.seq for s in list_snapshots(shared)] == [12, 11]


def _cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


def test_cli_save_and_list(engine_settings, engine, headers, tmp_path, monkeypatch, capsys):
    with TestClient(create_app(engine_settings)) as c:
        _write(c, TITLES[0], headers["admin"])
    monkeypatch.setenv("MATCHER_DATA_DIR", str(engine_settings.data_dir))
    monkeypatch.setenv("MATCHER_DATABASE_URL", engine_settings.sqlalchemy_url)
    monkeypatch.setenv("MATCHER_ENCODER", engine_settings.encoder)
    monkeypatch.delenv("MATCHER_SNAPSHOT_DIR", raising=False)
    assert _cli("snapshot", "save") == 1
    assert (
        capsys.readouterr().err.strip()
        == "error: no snapshot directory: set MATCHER_SNAPSHOT_DIR or pass --to"
    )
    shared = tmp_path / "shared"
    assert _cli("snapshot", "save", "--to", str(shared)) == 0
    saved = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert saved["counts"]["supply"] == 1 and saved["schema_revision"] == head()
    monkeypatch.setenv("MATCHER_SNAPSHOT_DIR", str(shared))
    assert _cli("snapshot", "list") == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [(s["path"], s["fits"], s["why_not"]) for s in listed] == [(saved["path"], True, None)]
