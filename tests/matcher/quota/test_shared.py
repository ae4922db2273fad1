"""Buckets shared through the real Redis (127.0.0.1:6379, or MATCHER_TEST_REDIS_URL): two limiter instances, as
two replicas, drain one bucket; with Redis unreachable they decide in process, log once and never raise."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid

import pytest

from matcher.quota.buckets import Charge, Limit
from matcher.quota.shared import RedisBuckets
from tests.conftest import free_port

REDIS_URL = os.environ.get("MATCHER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}); set MATCHER_TEST_REDIS_URL to run these")
    return REDIS_URL


def _take_many(replicas: list[RedisBuckets], charges: list[Charge], n: int) -> list[bool]:
    async def run() -> list[bool]:
        out = [(await replicas[i % len(replicas)].take(charges, 1)).allowed for i in range(n)]
        for r in replicas:
            await r.close()
        return out

    return asyncio.run(run())


def test_two_replicas_share_one_bucket(redis_url: str):
    prefix = f"parkmatch-test:{uuid.uuid4().hex}:"
    replicas = [RedisBuckets(redis_url, prefix=prefix), RedisBuckets(redis_url, prefix=prefix)]
    key = [Charge("{tenant-a}:key:1", Limit(rate=0.01, burst=6.0))]
    # alternating replicas: six requests in all fit, not six each
    assert _take_many(replicas, key, 10) == [True] * 6 + [False] * 4
    assert all(not r._down for r in replicas)


def test_a_tenant_bucket_spans_keys_in_redis(redis_url: str):
    prefix = f"parkmatch-test:{uuid.uuid4().hex}:"
    tenant = Charge("{t}:tenant", Limit(rate=0.01, burst=3.0))
    a = [Charge("{t}:key:1", Limit(rate=0.01, burst=10.0)), tenant]
    b = [Charge("{t}:key:2", Limit(rate=0.01, burst=10.0)), tenant]

    async def run() -> list[bool]:
        buckets = RedisBuckets(redis_url, prefix=prefix)
        out = [(await buckets.take(a, 1)).allowed for _ in range(2)]
        out += [(await buckets.take(b, 1)).allowed for _ in range(2)]
        refused = await buckets.take(b, 1)
        assert refused.retry_after > 1 and refused.limit == 3
        await buckets.close()
        return out

    assert asyncio.run(run()) == [True, True, True, False]


def test_redis_down_falls_back_in_process_and_logs_once(caplog: pytest.LogCaptureFixture):
    buckets = RedisBuckets(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    key = [Charge("k", Limit(rate=0.01, burst=3.0))]
    with caplog.at_level(logging.WARNING, logger="matcher.quota.shared"):
        assert _take_many([buckets], key, 5) == [True] * 3 + [False] * 2
    assert buckets._down
    assert len([r for r in caplog.records if "Redis unreachable" in r.getMessage()]) == 1
