"""A real server on 127.0.0.1 over the demo park, accounts made with `matcher users create`, and headless
Chromium (Debian's, driven by Playwright) with every request that leaves 127.0.0.1 refused and recorded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from matcher.demo.dataset import load_demo
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine
from tests.conftest import UNLIMITED_RATES, free_port

CHROMIUM = os.environ.get("MATCHER_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "officer-pass-1"
TENANT = "demo-park"


@dataclass
class Live:
    base: str
    settings: Settings
    data_dir: Path
    officer: str = "officer@demo-park.example"
    admin: str = "admin@demo-park.example"
    outside: list[str] = field(default_factory=list)  # requests the browser tried to send elsewhere


def _cli(data_dir: Path, *args: str) -> str:
    env = {**os.environ, "MATCHER_DATA_DIR": str(data_dir)}
    env.pop("MATCHER_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "matcher.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, encoder_dir: Path) -> Iterator[Live]:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: `apt-get install chromium` (.ci/run does it)")
    data_dir = tmp_path_factory.mktemp("live") / "data"
    settings = Settings(
        data_dir=data_dir, encoder=str(encoder_dir), smtp_port=9, smtp_timeout=1.0, **UNLIMITED_RATES
    )
    db = make_engine(settings)
    init_db(db)
    load_demo(db, tenant=TENANT, results=0, corpus=None)
    db.dispose()
    port = free_port()
    settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    live = Live(f"http://127.0.0.1:{port}", settings, data_dir)
    _cli(
        data_dir,
        "users",
        "create",
        "--tenant",
        TENANT,
        "--role",
        "officer",
        "--email",
        live.officer,
        "--password",
        PASSWORD,
        "--name",
        "王晓梅",
    )
    _cli(
        data_dir,
        "users",
        "create",
        "--tenant",
        TENANT,
        "--role",
        "admin",
        "--email",
        live.admin,
        "--password",
        PASSWORD,
        "--name",
        "李主任",
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{live.base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    else:
        pytest.fail("the server did not become ready")
    try:
        yield live
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser(live: Live):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


def _guard(live: Live, context) -> None:
    """Refuse (and record) any request that is not to the server under test."""

    def route(r) -> None:
        url = r.request.url
        if url.startswith(live.base + "/") or url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            live.outside.append(url)
            r.abort()

    context.route("**/*", route)


@pytest.fixture
def context(browser, live: Live):
    ctx = browser.new_context(locale="zh-CN", accept_downloads=True, viewport={"width": 1360, "height": 900})
    _guard(live, ctx)
    yield ctx
    ctx.close()


def screenshots_dir() -> Path | None:
    """Where to keep screenshots of the main pages (MATCHER_TEST_SCREENSHOTS, e.g. docs/screenshots)."""
    target = os.environ.get("MATCHER_TEST_SCREENSHOTS")
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path
