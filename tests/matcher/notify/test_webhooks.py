"""Webhooks against a real HTTP receiver on loopback: signatures, retry on 500, timeouts, URL checks,
and standing matches recorded once per need and resource."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from sqlmodel import Session, select

from matcher.domain.tables import Enterprise, Need, Resource, Tenant
from matcher.errors import ValidationFailed
from matcher.notify.delivery import WebhookDispatcher, new_secret
from matcher.notify.listener import StandingMatchListener
from matcher.notify.signing import HEADER, sign, verify
from matcher.notify.tables import StandingMatch, WebhookDelivery, WebhookSubscription
from matcher.notify.urls import validate_webhook_url
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine


class Receiver:
    """A tiny HTTP server in a thread; `plan` lists the status codes to answer, 'hang' to stall."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.plan: list[int | str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((dict(self.headers), body))
                action = outer.plan.pop(0) if outer.plan else 200
                if action == "hang":
                    time.sleep(3)
                    action = 200
                try:
                    self.send_response(int(action))
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture()
def env(tmp_path):
    settings = Settings(
        data_dir=tmp_path,
        secret_key="k",
        webhook_allow_private=True,
        webhook_timeout=0.5,
        notify_threshold=0.5,
        public_url="https://park.example.com",
    )
    db = make_engine(settings)
    init_db(db)
    with Session(db) as s:
        s.add(Tenant(id="park"))
        s.commit()
    dispatcher = WebhookDispatcher(settings, db, max_attempts=3, backoff_s=0.01, background=False)
    yield settings, db, dispatcher
    db.dispose()


def subscribe(db, url: str, secret: str = "whsec_test") -> int:
    with Session(db) as s:
        sub = WebhookSubscription(tenant_id="park", url=url, secret=secret)
        s.add(sub)
        s.commit()
        return sub.id


def test_signature_roundtrip_and_staleness():
    header = sign("s", b'{"a":1}', timestamp=1000)
    assert verify("s", header, b'{"a":1}', now=1010)
    assert not verify("s", header, b'{"a":2}', now=1010)
    assert not verify("other", header, b'{"a":1}', now=1010)
    assert not verify("s", header, b'{"a":1}', now=5000)
    assert not verify("s", "garbage", b"")


def test_delivery_is_signed_and_verifiable(env, receiver):
    settings, db, dispatcher = env
    subscribe(db, receiver.url, secret="whsec_abc")
    [delivery_id] = dispatcher.enqueue("park", "match.created", {"need_id": 1, "score": 0.9})
    headers, body = receiver.requests[0]
    assert verify("whsec_abc", headers[HEADER], body)
    payload = json.loads(body)
    assert payload["type"] == "match.created" and payload["data"]["need_id"] == 1
    assert headers["X-Parkmatch-Delivery"] == payload["id"]
    with Session(db) as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row.status == "delivered" and row.attempts == 1 and row.last_status_code == 200


def test_retry_on_500_then_success(env, receiver):
    settings, db, dispatcher = env
    subscribe(db, receiver.url)
    receiver.plan = [500, 503]
    [delivery_id] = dispatcher.enqueue("park", "match.created", {})
    assert len(receiver.requests) == 3
    with Session(db) as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row.status == "delivered" and row.attempts == 3
        assert [e.get("status_code") for e in row.log] == [500, 503, 200]
    # the same event id on every retry lets the receiver drop duplicates
    assert len({json.loads(b)["id"] for _, b in receiver.requests}) == 1


def test_hanging_receiver_times_out_and_is_logged(env, receiver):
    settings, db, dispatcher = env
    subscribe(db, receiver.url)
    receiver.plan = ["hang", "hang", "hang"]
    t0 = time.monotonic()
    [delivery_id] = dispatcher.enqueue("park", "match.created", {})
    assert time.monotonic() - t0 < 2.5  # three attempts each cut at 0.5 s
    with Session(db) as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row.status == "failed" and row.attempts == 3
        assert all("timeout" in e["error"] for e in row.log)


def test_url_validation():
    assert validate_webhook_url("https://example.com/hook", allow_private=True)
    for bad in (
        "ftp://example.com/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://",
        "http://u:p@example.com/",
    ):
        with pytest.raises(ValidationFailed):
            validate_webhook_url(bad, allow_private=True)
    for private in (
        "http://127.0.0.1:8080/x",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://[::1]/",
        "http://169.254.169.254/latest",
        "http://localhost/",
    ):
        with pytest.raises(ValidationFailed):
            validate_webhook_url(private, allow_private=False)
        assert validate_webhook_url(private, allow_private=True)
    assert validate_webhook_url("http://8.8.8.8/hook", allow_private=False)


def test_private_target_refused_at_delivery_when_disallowed(env, receiver):
    settings, db, _ = env
    strict = settings.model_copy(update={"webhook_allow_private": False})
    dispatcher = WebhookDispatcher(strict, db, max_attempts=3, backoff_s=0.01, background=False)
    subscribe(db, receiver.url)
    [delivery_id] = dispatcher.enqueue("park", "match.created", {})
    assert receiver.requests == []
    with Session(db) as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert row.status == "failed" and row.attempts == 1 and "private" in row.last_error


def test_background_dispatch_drains(tmp_path, receiver):
    settings = Settings(data_dir=tmp_path, secret_key="k")
    db = make_engine(settings)
    init_db(db)
    with Session(db) as s:
        s.add(Tenant(id="park"))
        s.commit()
    dispatcher = WebhookDispatcher(settings, db, backoff_s=0.01)
    subscribe(db, receiver.url)
    dispatcher.enqueue("park", "match.created", {})
    dispatcher.drain(5)
    dispatcher.close()
    assert len(receiver.requests) == 1
    assert new_secret().startswith("whsec_")


class FakeReverseEngine:
    """engine.reverse stand-in: every open need scores 0.8, the enterprise profile 0.9 (must be ignored)."""

    def __init__(self, db) -> None:
        self.db = db

    def reverse(self, resource_id, *, tenant, k, min_score, include):
        from matcher.indexing.demand_keys import demand_key

        with Session(self.db) as s:
            needs = s.exec(select(Need)).all()
        cands = [
            SimpleNamespace(
                id=demand_key(0, n.id),
                score=0.8 if n.title != "weak" else 0.2,
                meta=SimpleNamespace(tenant=n.tenant_id, extra={"enterprise_id": n.enterprise_id}),
            )
            for n in needs
        ] + [SimpleNamespace(id=demand_key(1, 1), score=0.9, meta=SimpleNamespace(tenant="park", extra={}))]
        return SimpleNamespace(
            candidates=cands, explanations={c.id: {"summary": "both in robotics"} for c in cands}
        )


def test_standing_matches_recorded_once_and_notified(env, receiver):
    pytest.importorskip(
        "matcher.matching.engine", reason="the match engine's index modules are not available"
    )
    settings, db, dispatcher = env
    subscribe(db, receiver.url, secret="whsec_x")
    with Session(db, expire_on_commit=False) as s:
        e = Enterprise(tenant_id="park", name="E", email="e@example.com")
        s.add(e)
        s.commit()
        s.add_all(
            [
                Need(tenant_id="park", enterprise_id=e.id, title="robot arm"),
                Need(tenant_id="park", enterprise_id=e.id, title="weak"),
            ]
        )
        r = Resource(tenant_id="park", kind="scenario", title="robot scenario")
        s.add(r)
        s.commit()
    listener = StandingMatchListener(FakeReverseEngine(db), db, settings, dispatcher)
    listener.resources_changed([r])
    listener.resources_changed([r])  # the same change again notifies nothing new
    with Session(db) as s:
        rows = s.exec(select(StandingMatch)).all()
    assert len(rows) == 1 and rows[0].score == 0.8 and rows[0].summary == "both in robotics"
    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert verify("whsec_x", headers[HEADER], body)
    data = json.loads(body)["data"]
    assert data["resource"]["url"] == f"https://park.example.com/v1/resources/{r.id}"


def test_pending_deliveries_are_resumed_after_a_restart(env, receiver):
    """A stop between attempts leaves a pending row; the next start carries on from the attempts made."""
    settings, db, dispatcher = env
    sub = subscribe(db, receiver.url, secret="whsec_resume")
    with Session(db) as s:
        half_done = WebhookDelivery(
            subscription_id=sub,
            event_id="evt-1",
            event="match.created",
            payload={"id": "evt-1", "data": {}},
            attempts=1,
            log=[{"ok": False, "status_code": 503}],
        )
        done = WebhookDelivery(
            subscription_id=sub,
            event_id="evt-2",
            event="match.created",
            payload={"id": "evt-2"},
            status="delivered",
            attempts=1,
        )
        s.add_all([half_done, done])
        s.commit()
        pending_id = half_done.id
    restarted = WebhookDispatcher(settings, db, max_attempts=3, backoff_s=0.01, background=False)
    assert restarted.resume_pending() == [pending_id]
    assert len(receiver.requests) == 1  # the delivered one is not sent again
    headers, body = receiver.requests[0]
    assert verify("whsec_resume", headers[HEADER], body) and json.loads(body)["id"] == "evt-1"
    with Session(db) as s:
        row = s.get(WebhookDelivery, pending_id)
        assert row.status == "delivered" and row.attempts == 2
    assert restarted.resume_pending() == []
