"""`matcher serve` refuses an 8 MB request header before the app sees it, and the app's 431 answers a header
over MATCHER_MAX_HEADER_BYTES that the server still read."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

pytestmark = pytest.mark.slow  # trains the test encoder and starts a server

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def server(tmp_path: Path, encoder_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATCHER_")}
    env.update(
        MATCHER_DATA_DIR=str(tmp_path / "data"),
        MATCHER_ENCODER=str(encoder_dir),
        MATCHER_LOG_LEVEL="WARNING",
        MATCHER_MODEL_POLL_S="0",
        MATCHER_TRIAL_CHECK_S="0",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "matcher.cli.main", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"matcher serve exited with {proc.returncode}"
            assert time.monotonic() < deadline, "matcher serve was not ready within 60 s"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _raw_get(port: int, header_value_bytes: int) -> bytes:
    """Send a GET whose one header carries this many bytes; what the server answers before closing."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: "
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        chunk = b"x" * 65_536
        sent = 0
        try:
            while sent < header_value_bytes:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-header: the answer is already on its way
        answer = b""
        try:
            while data := sock.recv(65_536):
                answer += data
        except ConnectionResetError:
            pass
    return answer


def test_an_eight_megabyte_header_is_refused_by_the_server(server: str):
    port = int(server.rsplit(":", 1)[1])
    answer = _raw_get(port, 8 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"application/problem+json" in answer
    # between the app's limit and the server's: read, then refused by the app with its problem+json
    r = httpx.get(f"{server}/v1/taxonomy", headers={"X-Padding": "x" * 20_000}, timeout=10)
    assert r.status_code == 431 and r.json()["status"] == 431
    assert httpx.get(f"{server}/healthz", timeout=10).status_code == 200
