"""Shared fixtures: settings over a temporary data dir, both stores, an app client, API keys per role and tenant.

A test that asks for `store` (directly or via `pytestmark = pytest.mark.usefixtures("store")`) runs once on a
SQLite file and once on PostgreSQL (a schema of the run's own, emptied before each test); `settings`, `engine`
and `client` follow it; `@pytest.mark.parametrize("store", ["sqlite"], indirect=True)` narrows one test to SQLite.
PostgreSQL comes from MATCHER_TEST_POSTGRES_URL; when it is unreachable the tests fail, unless
MATCHER_SKIP_POSTGRES=1 says to skip them."""

from __future__ import annotations

import email
import email.policy
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel

from api.app import create_app
from matcher.settings import Settings
from matcher.store.db import import_table_modules, init_db, make_engine, session_scope
from matcher.store.keys import Caller, create_key

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"

# name -> (tenant, role) of the keys the `keys` fixture creates
KEY_SPECS: dict[str, tuple[str, str]] = {
    "admin": (TENANT, "admin"),
    "officer": (TENANT, "officer"),
    "platform": (TENANT, "platform"),
    "other": (OTHER_TENANT, "admin"),
    "other_platform": (OTHER_TENANT, "platform"),
}


# the rate limiter runs in every app test, with buckets no test empties; tests of the limits set their own
UNLIMITED_RATES: dict[str, float] = {
    f"rate_{who}_{what}": 1e9 for who in ("key", "tenant", "anonymous") for what in ("per_s", "burst")
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- stores


# the machine's built default encoder, for the tests that use it on purpose (`shipped_encoder_cache`)
MACHINE_MODEL_CACHE = Path(
    os.environ.get("MATCHER_MODEL_CACHE_DIR") or Path.home() / ".cache/parkmatch/models"
)


@pytest.fixture(autouse=True)
def _own_model_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's Settings look for the shipped default encoder in an empty folder of its own, so that no
    test depends on whether this machine (or another test) has built it."""
    monkeypatch.setenv("MATCHER_MODEL_CACHE_DIR", str(tmp_path_factory.mktemp("model-cache")))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server for the `postgres` store, checked once per run."""
    if os.environ.get("MATCHER_SKIP_POSTGRES") == "1":
        pytest.skip("PostgreSQL tests skipped (MATCHER_SKIP_POSTGRES=1)")
    url = os.environ.get("MATCHER_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means the same thing here
        pytest.fail(
            f"PostgreSQL is not reachable at {make_url(url).render_as_string(hide_password=True)} ({exc}). "
            "Start it, point MATCHER_TEST_POSTGRES_URL at one, or set MATCHER_SKIP_POSTGRES=1 to skip.",
            pytrace=False,
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgres_schema(postgres_url: str) -> Iterator[tuple[str, Engine]]:
    """One schema of its own for this test run (dropped at the end): (its URL, an engine on it)."""
    schema = f"pm_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(postgres_url, poolclass=NullPool)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = create_engine(url, poolclass=NullPool)
    try:
        yield url.render_as_string(hide_password=False), engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def _empty(engine: Engine) -> None:
    """Delete every row of the run's schema, children first (much faster than TRUNCATE or a new schema)."""
    import_table_modules()
    with engine.begin() as conn:
        present = {
            row[0]
            for row in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            )
        }
        known = [t for t in reversed(SQLModel.metadata.sorted_tables) if t.name in present]
        for table in known:
            conn.execute(table.delete())
        others = present - {t.name for t in known}
        if others:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{name}"' for name in sorted(others)) + " CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path) -> str:
    """A database URL on an empty store: a new SQLite file, or the run's PostgreSQL schema emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url, engine = request.getfixturevalue("postgres_schema")
    _empty(engine)
    return url


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path) -> Settings:
    """Settings over a temporary data dir; on the test's `store` when it asks for one, else a SQLite file."""
    database_url = request.getfixturevalue("store") if "store" in request.fixturenames else None
    return Settings(data_dir=tmp_path / "data", database_url=database_url, **UNLIMITED_RATES)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    db = make_engine(settings)
    init_db(db)
    yield db
    db.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


# ---------------------------------------------------------------- callers and keys


@dataclass(frozen=True)
class Keys:
    """Plaintext API keys: tenant A's admin, officer and platform; tenant B's admin (`other`) and platform."""

    admin: str
    officer: str
    platform: str
    other: str
    other_platform: str


@pytest.fixture
def keys(engine: Engine) -> Keys:
    with session_scope(engine) as s:
        made = {
            name: create_key(s, tenant=tenant, role=role, name=name)[1]
            for name, (tenant, role) in KEY_SPECS.items()
        }
    return Keys(**made)


@pytest.fixture
def headers(keys: Keys) -> dict[str, dict[str, str]]:
    """Authorization headers by key name: headers["admin"], headers["other"] ..."""
    return {name: bearer(key) for name, key in asdict(keys).items()}


@pytest.fixture
def callers() -> dict[str, Caller]:
    """Callers for repository tests, by the same names as `keys`."""
    return {name: Caller(tenant=tenant, role=role) for name, (tenant, role) in KEY_SPECS.items()}


# ---------------------------------------------------------------- the app


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A TestClient over a fresh app on the test's store; the match engine is not loaded."""
    with TestClient(create_app(settings, load_engine=False)) as c:
        yield c


class EventLog:
    """A ChangeHub listener that records every call as (method, ids...)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, ...]] = []

    def resources_changed(self, resources) -> None:
        self.calls.append(("resources_changed", [r.id for r in resources]))

    def resources_removed(self, ids) -> None:
        self.calls.append(("resources_removed", list(ids)))

    def demand_changed(self, needs, enterprises) -> None:
        self.calls.append(("demand_changed", [n.id for n in needs], [e.id for e in enterprises]))

    def demand_removed(self, need_ids, enterprise_ids) -> None:
        self.calls.append(("demand_removed", list(need_ids), list(enterprise_ids)))

    def clear(self) -> None:
        self.calls.clear()


@pytest.fixture
def events(client: TestClient) -> EventLog:
    """Events the app's hub emits from here on."""
    log = EventLog()
    client.app.state.app_state.hub.subscribe(log)
    return log


# ---------------------------------------------------------------- request bodies


@dataclass(frozen=True)
class Payloads:
    """Valid request bodies to start from; keyword arguments override fields."""

    resource: Callable[..., dict[str, Any]]
    enterprise: Callable[..., dict[str, Any]]
    need: Callable[..., dict[str, Any]]


_DETAILS = {
    "result": {
        "holder": "清华大学",
        "trl": 6,
        "ip_status": "granted",
        "patents": ["CN1"],
        "transfer_modes": ["许可"],
    },
    "scenario": {"owner": "北京地铁", "location": "海淀", "budget": 500000, "deadline": "2030-06-30"},
    "fund": {"manager": "中关村资本", "stages": ["A轮"], "ticket_min": 1e6, "ticket_max": 5e7},
    "incubator": {"operator": "创新工场", "facilities": ["洁净室"], "capacity": 40},
}


def _resource(kind: str = "result", **over: Any) -> dict[str, Any]:
    body = {
        "kind": kind,
        "title": f"量子传感 {kind}",
        "description": "高精度量子传感器，用于导航与医学成像。",
        "industries": ["量子信息"],
        "region": "海淀园",
        "details": dict(_DETAILS[kind]),
    }
    body.update(over)
    return body


def _enterprise(**over: Any) -> dict[str, Any]:
    body = {
        "name": "智芯科技有限公司",
        "description": "芯片设计企业",
        "industries": ["集成电路"],
        "region": "海淀园",
        "stage": "growth",
        "email": "contact@example.com",
        "digest_kinds": ["fund", "result"],
    }
    body.update(over)
    return body


def _need(enterprise_id: int, **over: Any) -> dict[str, Any]:
    body = {
        "enterprise_id": enterprise_id,
        "title": "寻找A轮融资",
        "description": "需要两千万元用于量产",
        "kinds": ["fund"],
        "industries": ["集成电路"],
        "amount": 2e7,
        "region": "海淀园",
    }
    body.update(over)
    return body


@pytest.fixture
def payloads() -> Payloads:
    return Payloads(resource=_resource, enterprise=_enterprise, need=_need)


# ---------------------------------------------------------------- a small encoder the tests build once


def demo_training_records() -> list[dict[str, Any]]:
    """The project's own demo records as training text (no shared data needed)."""
    from matcher.demo.dataset import own_records

    out = []
    for name in ("results", "scenarios", "funds", "incubators", "enterprises", "needs"):
        for i, r in enumerate(own_records(name)):
            out.append(
                {
                    "id": f"{name}-{i}",
                    "title": r.get("title") or r.get("name") or "",
                    "text": r.get("description") or "",
                    "keywords": [],
                }
            )
    return out


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static encoder trained on the demo records in seconds; shared by every test that needs one."""
    from training.encoders.static import train_static_encoder

    out = tmp_path_factory.mktemp("encoder") / "encoder-test"
    train_static_encoder(demo_training_records(), out, dim=64, epochs=8, show_progress=False, min_count=1)
    return out


@pytest.fixture
def engine_settings(settings: Settings, encoder_dir: Path) -> Settings:
    return settings.model_copy(update={"encoder": str(encoder_dir)})


@pytest.fixture
def engine_client(engine_settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A TestClient whose app loads the match engine (indexes in the test's data dir)."""
    with TestClient(create_app(engine_settings)) as c:
        yield c


# ---------------------------------------------------------------- learned rankers


@pytest.fixture
def make_ranker() -> Callable[[], Any]:
    """Fits a small learned ranker on synthetic lists (the first of each list is the relevant one)."""

    def fitted() -> Any:
        from training.rankers.estimator import LearnedRanker

        rng = np.random.default_rng(0)
        rows, y, g = [], [], []
        for q in range(20):
            for i in range(8):
                rel = float(rng.random())
                rows.append({"dense": rel, "lexical": float(rng.random()), "relevance": rel})
                y.append(int(i == 0))
                g.append(str(q))
                rows[-1]["relevance"] = 0.9 if i == 0 else rel * 0.8
        return LearnedRanker().fit(rows, y, groups=g)

    return fitted


# ---------------------------------------------------------------- mail


class Inbox:
    """aiosmtpd handler: keeps what it accepts, refuses listed recipients with a 5xx."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def smtp():
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
