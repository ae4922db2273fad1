"""`matcher feed status|prune|verify` against a store and a replica (an app whose HTTP calls are answered
in-process), and the admin-only index digest the replica serves."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from matcher.cli.main import main
from matcher.settings import Settings
from matcher.store import feed

pytestmark = pytest.mark.usefixtures("store")

REPLICA = "http://replica-a:8001"


@pytest.fixture
def replica(engine_settings: Settings, engine, settings, tmp_path, monkeypatch) -> Iterator[TestClient]:
    """A running replica at REPLICA, and the CLI's environment on the same store."""
    app_settings = engine_settings.model_copy(update={"feed_poll_s": 0.05, "data_dir": tmp_path / "replica"})
    monkeypatch.setenv("MATCHER_DATABASE_URL", settings.sqlalchemy_url)
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "cli"))
    with TestClient(create_app(app_settings)) as client:

        def get(url: str, **kw) -> httpx.Response:
            if not url.startswith(REPLICA):
                raise httpx.ConnectError(f"connection refused: {url}")
            kw.pop("timeout", None)
            return client.get(url.removeprefix(REPLICA), **kw)

        monkeypatch.setattr(httpx, "get", get)
        yield client


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


def _write(client: TestClient, headers, payloads, n: int) -> int:
    seq = 0
    for _ in range(n):
        r = client.post("/v1/resources", json=payloads.resource(), headers=headers["admin"])
        assert r.status_code == 201, r.text
        seq = int(r.headers["X-Matcher-Seq"])
    return seq


def test_the_digest_is_for_admins_and_waits_for_min_seq(replica, headers, payloads):
    seq = _write(replica, headers, payloads, 2)
    assert replica.get("/v1/admin/index/digest", headers=headers["officer"]).status_code == 403
    assert replica.get("/v1/admin/index/digest").status_code == 401
    r = replica.get("/v1/admin/index/digest", params={"min_seq": seq}, headers=headers["other"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied_seq"] == seq and body["kinds"]["resource"]["count"] == 2  # totals over every tenant
    assert body["kinds"]["need"]["count"] == 0 and set(body["kinds"]) == {"resource", "need", "enterprise"}


def test_status_prune_and_verify(replica, headers, keys, payloads, capsys, engine):
    seq = _write(replica, headers, payloads, 5)
    replica.get("/v1/search", params={"q": "x", "min_seq": seq}, headers=headers["admin"])  # applied
    assert cli("feed", "status", "--replica", REPLICA, "--replica", "http://gone:1", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["head_seq"], status["oldest_seq"], status["entries"]) == (5, 1, 5)
    assert status["replicas"][0] == {"url": REPLICA, "applied_seq": 5, "lag_entries": 0}
    assert status["replicas"][1]["applied_seq"] is None and "did not answer" in status["replicas"][1]["error"]
    assert cli("feed", "status", "--replica", REPLICA) == 0
    assert capsys.readouterr().out.splitlines() == [
        "change feed: seq 1 to 5, 5 entries",
        f"  {REPLICA}: applied seq 5, 0 behind",
    ]

    assert cli("feed", "prune", "--keep", "2", "--replica", REPLICA) == 0
    assert capsys.readouterr().out.strip() == (
        "deleted 3 entries up to seq 3; the log holds seq 4 to 5 "
        "(the lowest applied seq of the named replicas is 5)"
    )
    assert (
        cli("feed", "prune", "--keep", "1", "--replica", "http://gone:1") == 1
    )  # no prune past an unknown one
    assert capsys.readouterr().err.startswith("error: replica http://gone:1 did not answer /readyz")
    assert cli("feed", "prune", "--keep", "0") == 2  # usage error
    capsys.readouterr()
    assert feed.count(replica.app.state.app_state.db) == 2

    assert cli("feed", "verify", "--replica", REPLICA, "--key", keys.admin) == 0
    assert capsys.readouterr().out.strip() == f"{REPLICA}: holds the store's records"
    # the store changes behind the replica's back (no change-feed entry): verify says so, one line each
    rid = replica.get("/v1/resources", headers=headers["admin"]).json()["data"][0]["id"]
    with Session(replica.app.state.app_state.db) as s:
        s.connection().exec_driver_sql(f"DELETE FROM resource WHERE id = {int(rid)}")
        s.commit()
    assert cli("feed", "verify", "--replica", REPLICA, "--key", keys.admin, "--attempts", "1") == 1
    out, err = capsys.readouterr()
    assert out.strip().splitlines() == [
        f"{REPLICA}: resource: 4 records in the store, 5 in the replica's index"
    ]
    assert err.strip() == "error: 1 of 1 replicas differ from the store"
    assert cli("feed", "verify", "--replica", REPLICA, "--key", keys.officer) == 1
    assert "answered 403" in capsys.readouterr().err
