"""Request limits through the app: one key bursting gets 429s (never 5xx) while other tenants are served, a
tenant's keys share its bucket, expensive routes cost more, a Redis outage changes nothing for the caller, and
oversized headers get 431."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from matcher.settings import Settings
from matcher.store.db import session_scope
from matcher.store.keys import create_key
from tests.conftest import free_port

URL = "/v1/resources"


def _limited(settings: Settings, **limits: float | str) -> Iterator[TestClient]:
    tight = settings.model_copy(
        update={
            "rate_key_per_s": 0.01,
            "rate_key_burst": 10.0,
            "rate_tenant_per_s": 0.01,
            "rate_tenant_burst": 100.0,
            **limits,
        }
    )
    with TestClient(create_app(tight, load_engine=False)) as c:
        yield c


@pytest.fixture
def limited(settings: Settings, engine) -> Iterator[TestClient]:
    yield from _limited(settings)


def _assert_429(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["status"] == 429 and r.json()["retry_after"] == int(r.headers["retry-after"])
    assert r.headers["ratelimit-remaining"] == "0"
    assert r.headers["x-request-id"]


def test_one_key_bursting_gets_429_while_another_tenant_is_served(limited, headers):
    with ThreadPoolExecutor(max_workers=8) as pool:
        burst = list(pool.map(lambda _: limited.get(URL, headers=headers["admin"]), range(30)))
    statuses = [r.status_code for r in burst]
    assert statuses.count(200) == 10 and statuses.count(429) == 20, statuses
    for r in burst:
        if r.status_code == 429:
            _assert_429(r)
        else:
            assert r.headers["ratelimit-limit"] == "10"
    other = [limited.get(URL, headers=headers["other"]) for _ in range(5)]
    assert [r.status_code for r in other] == [200] * 5


def test_a_tenants_keys_share_its_bucket(settings, engine, headers):
    for c in _limited(settings, rate_key_burst=100.0, rate_tenant_burst=12.0):
        assert [c.get(URL, headers=headers["admin"]).status_code for _ in range(8)] == [200] * 8
        officer = [c.get(URL, headers=headers["officer"]).status_code for _ in range(6)]
        assert officer == [200] * 4 + [429] * 2
        _assert_429(c.get(URL, headers=headers["platform"]))
        assert c.get(URL, headers=headers["other_platform"]).status_code == 200


def test_a_search_costs_more_than_a_read(limited, headers):
    first = limited.get(URL, headers=headers["admin"])
    assert first.headers["ratelimit-remaining"] == "9"
    search = limited.get("/v1/search", params={"q": "电池"}, headers=headers["admin"])
    assert search.status_code != 429 and search.headers["ratelimit-remaining"] == "4"
    assert limited.get("/healthz").status_code == 200  # probes are not charged
    assert "ratelimit-remaining" not in limited.get("/healthz").headers


def test_requests_without_a_valid_key_pay_per_client_address(settings, engine, headers):
    for c in _limited(settings, rate_anonymous_per_s=0.01, rate_anonymous_burst=3.0):
        bad = {"Authorization": "Bearer pm_nope_nope"}
        assert [c.get(URL, headers=bad).status_code for _ in range(4)] == [401, 401, 401, 429]
        assert c.get(URL, headers=headers["admin"]).status_code == 200


def test_a_revoked_key_is_forgotten_at_once(limited, headers):
    created = limited.post("/v1/keys", json={"role": "officer"}, headers=headers["admin"]).json()
    new = {"Authorization": f"Bearer {created['key']}"}
    assert limited.get(URL, headers=new).status_code == 200
    assert limited.delete(f"/v1/keys/{created['id']}", headers=headers["admin"]).status_code == 204
    assert limited.get(URL, headers=new).status_code == 401


def test_redis_down_never_turns_into_5xx(settings, engine, headers):
    for c in _limited(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"):
        statuses = [c.get(URL, headers=headers["admin"]).status_code for _ in range(12)]
        assert statuses == [200] * 10 + [429] * 2


def test_buckets_in_redis_through_the_app(settings, engine, headers):
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {url} ({exc})")
    # a tenant of this run's own, so earlier runs' buckets in the same Redis do not count
    for c in _limited(settings, redis_url=url):
        tenant = f"rl-{uuid.uuid4().hex[:8]}"
        with session_scope(engine) as s:
            key = create_key(s, tenant=tenant, role="admin")[1]
        statuses = [c.get(URL, headers={"Authorization": f"Bearer {key}"}).status_code for _ in range(12)]
        assert statuses == [200] * 10 + [429] * 2


def test_oversized_headers_get_431(client, headers):
    r = client.get(URL, headers={**headers["admin"], "X-Padding": "x" * 20_000})
    assert r.status_code == 431, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "16,384" in r.json()["detail"]
    assert r.headers["x-request-id"]
    assert client.get(URL, headers={**headers["admin"], "X-Padding": "x" * 8_000}).status_code == 200


def test_pages_over_the_limit_get_a_bilingual_page_the_api_its_problem(settings, engine, headers):
    for c in _limited(settings, rate_anonymous_per_s=0.01, rate_anonymous_burst=2.0):
        assert [c.get("/ui/login").status_code for _ in range(2)] == [200, 200]
        r = c.get("/ui/login")
        assert r.status_code == 429 and r.headers["content-type"].startswith("text/html")
        wait = int(r.headers["retry-after"])
        assert wait >= 1 and r.headers["ratelimit-remaining"] == "0"
        assert "请求过于频繁 / Too many requests" in r.text and f"{wait} 秒后重试" in r.text
        assert f"retry in {wait} s" in r.text and r.text.index("秒后重试") < r.text.index("retry in")
        assert "Traceback" not in r.text and r.headers["content-security-policy"].startswith("default-src")
        c.cookies.set("pm_lang", "en")
        r = c.get("/p/unsubscribe", params={"token": "x"})
        assert r.status_code == 429 and r.headers["content-type"].startswith("text/html")
        assert "Too many requests / 请求过于频繁" in r.text and int(r.headers["retry-after"]) >= 1
        api = c.get(URL, headers={"Authorization": "Bearer pm_nope_nope"})
        _assert_429(api)  # the API keeps problem+json
