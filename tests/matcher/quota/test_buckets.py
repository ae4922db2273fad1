"""Token buckets in process: burst, refill, retry-after, and a request paying into all of its buckets or none."""

from __future__ import annotations

import asyncio

import pytest

from matcher.quota.buckets import Charge, Limit, LocalBuckets, whole_seconds
from matcher.quota.policy import route_cost
from matcher.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_refill_rate():
    clock = Clock()
    buckets = LocalBuckets(clock=clock)
    key = [Charge("k", Limit(rate=2.0, burst=5.0))]
    assert [buckets.take_now(key, 1).allowed for _ in range(6)] == [True] * 5 + [False]
    refused = buckets.take_now(key, 1)
    assert refused.retry_after == pytest.approx(0.5)
    assert refused.remaining == 0 and refused.limit == 5
    clock.now += 0.5
    assert buckets.take_now(key, 1).allowed
    assert not buckets.take_now(key, 1).allowed


def test_an_expensive_request_needs_its_whole_cost_and_a_cost_above_the_burst_still_fits_a_full_bucket():
    clock = Clock()
    buckets = LocalBuckets(clock=clock)
    key = [Charge("k", Limit(rate=1.0, burst=10.0))]
    assert buckets.take_now(key, 8).remaining == pytest.approx(2)
    refused = buckets.take_now(key, 5)
    assert not refused.allowed and refused.retry_after == pytest.approx(3)
    clock.now += 8
    assert buckets.take_now(key, 50).allowed  # capped at the burst: served once the bucket is full


def test_a_request_pays_into_every_bucket_or_none():
    clock = Clock()
    buckets = LocalBuckets(clock=clock)
    tenant = Charge("t", Limit(rate=1.0, burst=3.0))
    first = [Charge("k1", Limit(rate=1.0, burst=10.0)), tenant]
    second = [Charge("k2", Limit(rate=1.0, burst=10.0)), tenant]
    assert [buckets.take_now(first, 1).allowed for _ in range(3)] == [True] * 3
    refused = buckets.take_now(second, 1)  # the tenant is empty, though k2 is full
    assert not refused.allowed and refused.limit == 3
    clock.now += 1
    assert buckets.take_now(second, 1).remaining == 0  # k2 paid nothing while refused: the tenant is tightest
    assert asyncio.run(buckets.take(first, 1)).allowed is False


def test_full_buckets_are_forgotten_past_the_bound():
    clock = Clock()
    buckets = LocalBuckets(clock=clock, max_buckets=10)
    for i in range(11):
        buckets.take_now([Charge(f"k{i}", Limit(rate=10.0, burst=1.0))], 1)
    clock.now += 1
    buckets.take_now([Charge("last", Limit(rate=10.0, burst=1.0))], 1)
    assert len(buckets._state) <= 2


def test_costs_by_route():
    s = Settings(rate_cost_match=5, rate_cost_bulk=20)
    assert route_cost(s, "/healthz") == 0
    assert route_cost(s, "/v1/resources") == 1
    assert route_cost(s, "/v1/match") == route_cost(s, "/v1/search") == 5
    assert route_cost(s, "/v1/needs/3/matches") == 5
    assert route_cost(s, "/v1/resources:import") == route_cost(s, "/v1/digests:run") == 20
    assert route_cost(s, "/v1/events/4/schedule") == route_cost(s, "/v1/chains/2/placement") == 20
    assert route_cost(s, "/v1/events/4/participants") == route_cost(s, "/v1/chains/2") == 1
    assert whole_seconds(0.2) == 1 and whole_seconds(2.0) == 2
