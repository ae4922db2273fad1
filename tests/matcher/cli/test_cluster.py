"""`matcher cluster`: what it starts, that it starts again what dies and stops everything, and its one-line refusals."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
import yaml  # PyYAML: installed with sentence-transformers' Hub client

from matcher.cli.cluster import Child, plan, supervise
from matcher.cli.main import main


def test_plan_gives_each_replica_a_port_and_data_dir_and_shares_store_snapshots_and_broker(tmp_path):
    children = plan(
        replicas=2,
        workers=2,
        host="127.0.0.1",
        base_port=8101,
        data_root=tmp_path,
        database_url="postgresql+psycopg://postgres@127.0.0.1:5432/test",
        broker_url="amqp://guest:guest@127.0.0.1:5672//",
    )
    assert [c.name for c in children] == ["api-1", "api-2", "worker-1", "worker-2"]
    assert [c.argv[-4:] for c in children[:2]] == [
        ["--host", "127.0.0.1", "--port", "8101"],
        ["--host", "127.0.0.1", "--port", "8102"],
    ]
    assert all("worker" in c.argv for c in children[2:])
    assert len({c.env["MATCHER_DATA_DIR"] for c in children}) == 4
    for c in children:
        assert c.env["MATCHER_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert c.env["MATCHER_SNAPSHOT_DIR"] == str(tmp_path / "snapshots")
        assert c.env["MATCHER_BROKER_URL"] == "amqp://guest:guest@127.0.0.1:5672//"


def _py(name: str, code: str) -> Child:
    return Child(name, [sys.executable, "-c", code], {"PATH": "/usr/bin:/bin"})


def test_supervise_restarts_a_child_that_dies_and_stops_all_at_the_end(tmp_path, capsys):
    marker = tmp_path / "starts"
    dying = _py("dies", f"open({str(marker)!r}, 'a').write('x'); raise SystemExit(3)")
    steady = _py("steady", "import time; print('up', flush=True); time.sleep(600)")
    stop = threading.Event()
    runner = threading.Thread(
        target=supervise, args=([steady, dying],), kwargs={"stop": stop, "max_backoff": 1}
    )
    runner.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not marker.exists() or len(marker.read_text()) < 3):
        time.sleep(0.2)
    stop.set()
    runner.join(timeout=60)
    assert not runner.is_alive()
    assert len(marker.read_text()) >= 3  # started, died, started again (twice at least)
    assert steady.restarts == 0 and steady.proc is not None and steady.proc.poll() is not None  # stopped
    out = capsys.readouterr().out
    assert "[steady] up" in out
    assert "[cluster] dies exited with 3; restarting in 1s" in out


def _cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


def test_a_cluster_needs_a_shared_store_and_workers_need_a_broker(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    monkeypatch.delenv("MATCHER_BROKER_URL", raising=False)
    assert _cli("cluster") == 1
    assert capsys.readouterr().err.strip() == (
        "error: a cluster shares one store: set MATCHER_DATABASE_URL or pass --database-url (PostgreSQL)"
    )
    assert _cli("cluster", "--database-url", f"sqlite:///{tmp_path / 'x.db'}") == 1
    assert capsys.readouterr().err.strip() == (
        "error: workers need a broker: set MATCHER_BROKER_URL or pass --broker-url (or --workers 0)"
    )


def test_docker_compose_describes_the_same_topology_as_make_cluster(tmp_path):
    root = Path(__file__).resolve().parents[3]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())["services"]
    makefile = (root / "Makefile").read_text()
    replicas = int(makefile.split("matcher cluster --replicas ")[1].split()[0])
    workers = int(makefile.split("CLUSTER_WORKERS ?= ")[1].split()[0])
    assert workers == 2 and "--workers $$workers" in makefile
    children = plan(
        replicas=replicas,
        workers=workers,
        host="0.0.0.0",
        base_port=8001,
        data_root=tmp_path,
        database_url="postgresql+psycopg://x@y/z",
        broker_url="amqp://guest:guest@rabbitmq:5672//",
    )
    assert sorted(c.name for c in children) == sorted(n for n in compose if n.startswith(("api-", "worker-")))
    data_volumes = set()
    for child in children:
        service = compose[child.name]
        assert service["command"][:2] == [
            "matcher",
            child.argv[3],
        ]  # serve / worker, as the cluster runs them
        assert {"MATCHER_DATABASE_URL", "MATCHER_BROKER_URL", "MATCHER_SNAPSHOT_DIR"} <= set(
            service["environment"]
        )
        assert "snapshots:/snapshots" in service["volumes"]
        data_volumes |= {v for v in service["volumes"] if v.endswith(":/data")}
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert len(data_volumes) == len(
        children
    )  # each process its own indexes, as each cluster child its data dir
    assert compose["migrate"]["command"] == ["matcher", "migrate"]
