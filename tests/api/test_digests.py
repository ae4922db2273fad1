"""Digest endpoints over a real app and a real SMTP server on loopback: run, preview, subscription
preferences, the one-click unsubscribe flow end to end, forged and expired tokens, webhook subscriptions."""

from __future__ import annotations

import re

import pytest
from sqlmodel import Session

from api.routes.digests import get_digest_source
from matcher.digests.send import SmtpSender
from matcher.digests.sources import KeywordSource
from matcher.digests.tokens import make_unsubscribe_token
from matcher.domain.tables import Enterprise, Resource
from tests.conftest import TENANT


@pytest.fixture()
def inbox(smtp):
    box, port = smtp
    box.port = port
    return box


@pytest.fixture()
def park(client, engine, keys, settings, inbox):
    state = client.app.state.app_state
    state.email_sender = SmtpSender("127.0.0.1", inbox.port, rate_per_second=0)
    client.app.dependency_overrides[get_digest_source] = lambda: KeywordSource(engine)
    with Session(engine, expire_on_commit=False) as s:
        zh = Enterprise(
            tenant_id=TENANT, name="星河机器人", description="工业机器人 视觉检测", email="zh@example.com"
        )
        en = Enterprise(
            tenant_id=TENANT,
            name="Helio",
            description="solid state battery cells",
            email="en@example.com",
            language="en",
        )
        s.add_all([zh, en])
        s.add_all(
            [
                Resource(
                    tenant_id=TENANT,
                    kind="result",
                    title="工业机器人视觉检测",
                    description="工业机器人 视觉检测",
                    provider="清华",
                ),
                Resource(
                    tenant_id=TENANT,
                    kind="result",
                    title="Solid state battery",
                    description="solid state battery cells",
                    provider="MIT",
                ),
            ]
        )
        s.commit()
    return {"zh": zh.id, "en": en.id}


def test_run_unsubscribe_end_to_end(client, headers, inbox, park, engine):
    r = client.post("/v1/digests:run", json={}, headers=headers["officer"])
    assert r.status_code == 200, r.text
    assert r.json()["sent"] == 2
    assert client.post("/v1/digests:run", json={}, headers=headers["officer"]).json()["sent"] == 0
    assert client.post("/v1/digests:run", json={}, headers=headers["platform"]).status_code == 403

    msg = next(m for m in inbox.messages if str(m["To"]) == "en@example.com")
    url = re.search(r"<(https?://[^>]+)>", msg["List-Unsubscribe"]).group(1)
    token = url.split("token=", 1)[1]
    page = client.get("/v1/unsubscribe", params={"token": token})  # no API key needed
    assert page.status_code == 200 and '<form method="post"' in page.text
    with Session(engine) as s:
        assert not s.get(Enterprise, park["en"]).unsubscribed  # a GET never unsubscribes
    r = client.post("/v1/unsubscribe", params={"token": token}, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and r.json() == {"enterprise_id": park["en"], "unsubscribed": True}
    with Session(engine) as s:
        assert s.get(Enterprise, park["en"]).unsubscribed
    sub = client.get(f"/v1/enterprises/{park['en']}/subscription", headers=headers["admin"]).json()
    assert sub["unsubscribed"] is True

    with Session(engine) as s:
        s.add(
            Resource(
                tenant_id=TENANT,
                kind="result",
                title="Battery cells v2",
                description="solid state battery cells",
                provider="Stanford",
            )
        )
        s.commit()
    before = len(inbox.messages)
    report = client.post("/v1/digests:run", json={"period": "2099-W02"}, headers=headers["admin"]).json()
    assert all(str(m["To"]) != "en@example.com" for m in inbox.messages[before:]), report


def test_forged_and_expired_tokens_are_400(client, park, settings):
    secret = settings.resolved_secret()
    for token in (
        make_unsubscribe_token(park["en"], "not-the-secret"),
        make_unsubscribe_token(park["en"], secret, ttl_s=-10),
        "nonsense",
        "退订.链接",  # not ASCII: malformed, not a server error
    ):
        for method in ("get", "post"):
            r = getattr(client, method)("/v1/unsubscribe", params={"token": token})
            assert r.status_code == 400, (method, token, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")


def test_preview_json_and_html(client, headers, park, inbox):
    r = client.get("/v1/digests/preview", params={"enterprise_id": park["zh"]}, headers=headers["officer"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["language"] == "zh" and "本期推荐" in body["text"] and body["items"]
    assert "/p/r/" in body["items"][0]["url"]  # the enterprise's signed page of the resource
    r = client.get(
        "/v1/digests/preview",
        params={"enterprise_id": park["en"], "format": "html"},
        headers=headers["admin"],
    )
    assert (
        r.status_code == 200 and r.headers["content-type"].startswith("text/html") and "New for you" in r.text
    )
    assert not inbox.messages  # nothing sent
    other = client.get("/v1/digests/preview", params={"enterprise_id": park["zh"]}, headers=headers["other"])
    assert other.status_code == 404
    bad = client.get(
        "/v1/digests/preview", params={"enterprise_id": park["zh"], "period": "W48"}, headers=headers["admin"]
    )
    assert bad.status_code == 422


def test_subscription_preferences(client, headers, park):
    url = f"/v1/enterprises/{park['zh']}/subscription"
    assert client.get(url, headers=headers["admin"]).json()["frequency"] == "weekly"
    r = client.put(
        url,
        json={"frequency": "biweekly", "kinds": ["fund", "scenario"], "language": "en"},
        headers=headers["admin"],
    )
    assert r.status_code == 200 and r.json()["kinds"] == ["fund", "scenario"] and r.json()["language"] == "en"
    assert client.put(url, json={"frequency": "daily"}, headers=headers["admin"]).status_code == 422
    assert client.get(url, headers=headers["other"]).status_code == 404
    assert client.get(url).status_code == 401


def test_webhook_subscriptions(client, headers, settings):
    r = client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/parkmatch"}, headers=headers["admin"]
    )
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["match.created"]
    listed = client.get("/v1/webhooks", headers=headers["admin"]).json()
    assert listed["count"] == 1 and "secret" not in listed["data"][0]
    assert client.get("/v1/webhooks", headers=headers["other"]).json()["count"] == 0
    assert client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=headers["admin"]).json() == {
        "data": [],
        "count": 0,
    }
    bad = client.post("/v1/webhooks", json={"url": "ftp://example.com/x"}, headers=headers["admin"])
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert client.delete(f"/v1/webhooks/{hook['id']}", headers=headers["other"]).status_code == 404
    assert client.delete(f"/v1/webhooks/{hook['id']}", headers=headers["admin"]).status_code == 204
    assert client.get("/v1/webhooks", headers=headers["admin"]).json()["count"] == 0


def test_private_webhook_url_refused_when_disallowed(tmp_path, keys):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from matcher.settings import Settings

    strict = Settings(data_dir=tmp_path / "strict", webhook_allow_private=False)
    from matcher.store.db import init_db, make_engine, session_scope
    from matcher.store.keys import create_key

    db = make_engine(strict)
    init_db(db)
    with session_scope(db) as s:
        _, key = create_key(s, tenant=TENANT, role="admin")
    db.dispose()
    with TestClient(create_app(strict, load_engine=False)) as c:
        r = c.post(
            "/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert r.status_code == 422 and "private" in r.json()["detail"]
