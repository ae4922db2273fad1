"""`matcher serve` killed with SIGKILL in the middle of an import leaves nothing behind: no process of it keeps
the port, the next start on the same port comes up, and what was committed before the kill is served."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import bearer, free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
ROWS = 2_000  # per import: above the 1,024 texts at which encoders once forked
TENANT = "crash-park"
# every process the server starts inherits this variable: the way to find its children once it is dead
MARKER = "PARKMATCH_CRASH_TEST_RUN"


def _env(data_dir: Path, encoder_dir: Path, run_id: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATCHER_")}
    env.update(
        MATCHER_DATA_DIR=str(data_dir),
        MATCHER_ENCODER=str(encoder_dir),
        MATCHER_LOG_LEVEL="WARNING",
        MATCHER_MODEL_POLL_S="0",
        MATCHER_TRIAL_CHECK_S="0",
        **{MARKER: run_id},
    )
    return env


def _cli(env: dict[str, str], *args: str, stdout: int | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "matcher.cli.main", *args],
        cwd=REPO,
        env=env,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
    )


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return _cli(env, "serve", "--host", "127.0.0.1", "--port", str(port), stdout=subprocess.DEVNULL)


def _wait_for(what: str, check: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _ready(base: str, server: subprocess.Popen[bytes]) -> bool:
    if server.poll() is not None:
        raise AssertionError(f"matcher serve exited with {server.returncode} before it was ready")
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _marked_processes(run_id: str) -> list[int]:
    """Live processes (zombies left out) whose environment carries this run's marker."""
    needle = f"{MARKER}={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except (OSError, IndexError):  # gone meanwhile, or not ours to read
            continue
    return found


def _children(pid: int) -> list[int]:
    try:
        return [
            int(c)
            for task in Path(f"/proc/{pid}/task").iterdir()
            for c in (task / "children").read_text().split()
        ]
    except OSError:
        return []


def _port_is_free(port: int) -> bool:
    """Whether a new server can bind the port (with SO_REUSEADDR, as uvicorn binds it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(1)
        except OSError:
            return False
    return True


def _stored_results(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM resource WHERE tenant_id = ?", (TENANT,)).fetchone()[0]
    except sqlite3.Error:  # not created yet, or locked for a moment
        return 0


def _import_body(first: int) -> bytes:
    """ROWS research results, numbered from ``first``."""
    fields = ["储能电池", "污水处理", "工业视觉", "量子传感", "智慧农业", "医疗影像", "新材料", "机器人"]
    rows = []
    for i in range(first, first + ROWS):
        topic = fields[i % len(fields)]
        rows.append(
            {
                "external_id": f"R{i:05d}",
                "title": f"{topic}关键技术研究 第{i}号",
                "description": f"针对{topic}领域中存在的效率与成本问题，提出了一种新的方法，第{i}号成果。"
                "该方法经过中试验证，性能明显提升，可用于园区企业的产品升级。" * 3,
                "industries": ["新材料"],
                "region": "海淀园",
                "details": {"holder": f"示例大学{i % 17}", "trl": 5},
            }
        )
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()


class _Import:
    """One import POSTed from a thread, so that the test can watch the store and kill the server meanwhile."""

    def __init__(self, base: str, key: str, body: bytes) -> None:
        self.status: int | None = None
        self.error: httpx.HTTPError | None = None
        self.answered_at: float | None = None
        self.thread = threading.Thread(target=self._post, args=(base, key, body), daemon=True)
        self.thread.start()

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def _post(self, base: str, key: str, body: bytes) -> None:
        try:
            self.status = httpx.post(
                f"{base}/v1/resources:import",
                params={"kind": "result"},
                content=body,
                headers={**bearer(key), "Content-Type": "application/x-ndjson"},
                timeout=300,
            ).status_code
        except httpx.HTTPError as exc:
            self.error = exc
        finally:
            self.answered_at = time.monotonic()


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def processes(run_id: str) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes the test starts; on the way out they are killed, and so is anything they left behind."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - reported by the assertions of the test
                pass
        for pid in _marked_processes(run_id):  # orphans of a killed server, when the test has failed
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_server_killed_mid_import_leaves_the_port_free_and_its_data_served(
    tmp_path: Path, encoder_dir: Path, run_id: str, processes: list[subprocess.Popen[bytes]]
) -> None:
    env = _env(tmp_path / "data", encoder_dir, run_id)
    keys = _cli(env, "keys", "create", "--tenant", TENANT, "--role", "admin", stdout=subprocess.PIPE)
    processes.append(keys)
    out, _ = keys.communicate(timeout=120)
    assert keys.returncode == 0
    key = out.decode().strip().splitlines()[-1]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(env, port)
    processes.append(server)
    _wait_for("the first server to be ready", lambda: _ready(base, server), timeout=120)

    db = tmp_path / "data" / "parkmatch.db"
    # The rows of an import are committed in batches, then indexed before the response. A first import measures
    # how long that indexing takes; the second (whose indexing takes 1.2-1.3 times as long: the indexes are
    # larger) is killed late in it, when encoders once tokenised in forked workers, or as soon as the server
    # has a child process.
    first = _Import(base, key, _import_body(0))
    _wait_for(
        "the first import to be committed", lambda: _stored_results(db) == ROWS, timeout=180, interval=0.02
    )
    committed_at = time.monotonic()
    first.thread.join(timeout=180)
    assert first.status == 200, first.error
    indexing_s = first.answered_at - committed_at

    # On a loaded machine an import may finish sooner than the first one predicted: then another import is
    # sent and killed earlier in its indexing, up to three times.
    imports = 1
    for fraction in (0.85, 0.5, 0.25):
        second = _Import(base, key, _import_body(imports * ROWS))
        imports += 1
        _wait_for(
            "the next import to be committed",
            lambda n=imports: _stored_results(db) == n * ROWS,
            timeout=180,
            interval=0.02,
        )
        deadline = time.monotonic() + fraction * indexing_s
        while time.monotonic() < deadline and not _children(server.pid) and not second.answered:
            time.sleep(0.01)
        if not second.answered:
            break
        second.thread.join(timeout=180)
    assert not second.answered, "every import answered before the kill: none was still running"
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)

    _wait_for("no process of the killed server to remain", lambda: not _marked_processes(run_id), timeout=10)
    _wait_for("the port to be free", lambda: _port_is_free(port), timeout=10)
    second.thread.join(timeout=30)
    assert second.error is not None, "the import request should have been cut off by the kill"

    again = _serve(env, port)
    processes.append(again)
    _wait_for("the restarted server to be ready", lambda: _ready(base, again), timeout=120)
    assert _stored_results(db) == imports * ROWS
    match = httpx.post(
        f"{base}/v1/match",
        json={"text": "储能电池关键技术", "kinds": ["result"], "k": 5},
        headers=bearer(key),
        timeout=30,
    )
    assert match.status_code == 200, match.text
    found = match.json()["matches"]
    assert found and all("储能电池" in m["resource"]["title"] for m in found), found
