"""Two replicas on one PostgreSQL store: a write on A is searchable on B, and a `matcher import` into the store
of a running replica becomes searchable there without a restart (the change feed, woken by NOTIFY)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from matcher.cli.main import main
from matcher.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("store", ["postgres"], indirect=True)]


@pytest.fixture
def replicas(engine_settings: Settings, engine, tmp_path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps on the same store, each with indexes of its own (its own data dir)."""
    made = []
    for name in ("a", "b"):
        settings = engine_settings.model_copy(update={"data_dir": tmp_path / name, "feed_poll_s": 30.0})
        made.append(TestClient(create_app(settings)))
    with made[0] as a, made[1] as b:
        yield a, b


def _found(client: TestClient, headers: dict, q: str, **params) -> list[int]:
    r = client.get("/v1/search", params={"q": q, "k": 50, "min_score": 0, **params}, headers=headers)
    assert r.status_code == 200, r.text
    return [m["resource"]["id"] for m in r.json()["matches"]]


def test_a_write_on_one_replica_is_searchable_on_the_other(store, replicas, headers, payloads):
    a, b = replicas
    body = payloads.resource(title="钙钛矿叠层太阳能电池", description="钙钛矿 光伏 效率")
    r = a.post("/v1/resources", json=body, headers=headers["admin"])
    seq, rid = int(r.headers["X-Matcher-Seq"]), r.json()["id"]
    # polling is every 30 s here: only the NOTIFY can make it in time
    assert rid in _found(b, headers["admin"], "钙钛矿", min_seq=seq)
    r = a.patch(f"/v1/resources/{rid}", json={"title": "固态电池电解质"}, headers=headers["admin"])
    assert rid in _found(b, headers["admin"], "固态电池", min_seq=r.json()["seq"])
    r = a.delete(f"/v1/resources/{rid}", headers=headers["admin"])
    assert rid not in _found(b, headers["admin"], "固态电池", min_seq=int(r.headers["X-Matcher-Seq"]))


def test_a_cli_import_is_searchable_on_a_running_replica(
    store, replicas, headers, settings, tmp_path, monkeypatch
):
    _, b = replicas
    path = tmp_path / "rows.csv"
    path.write_text(
        "title,description\n钠离子电池正极材料,储能 钠电\n氢燃料电池电堆,氢能 交通\n", encoding="utf-8"
    )
    monkeypatch.setenv("MATCHER_DATABASE_URL", settings.sqlalchemy_url)
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "cli"))
    with pytest.raises(SystemExit) as done:
        main(["import", str(path), "--kind", "result", "--tenant", "tenant-a"])
    assert done.value.code == 0
    deadline = time.monotonic() + 10
    while not _found(b, headers["admin"], "钠离子") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _found(b, headers["admin"], "钠离子") and _found(b, headers["admin"], "氢燃料")
