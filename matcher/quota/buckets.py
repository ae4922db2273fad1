"""Token buckets and the decision one request gets; the in-process store of buckets."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Limit:
    """Refill `rate` tokens a second, up to `burst`."""

    rate: float
    burst: float


@dataclass(frozen=True)
class Charge:
    """One bucket a request is charged to: `name` identifies it across replicas."""

    name: str
    limit: Limit


@dataclass(frozen=True)
class Decision:
    """Whether a request may run; the figures of its tightest bucket feed the RateLimit headers."""

    allowed: bool
    retry_after: float  # seconds until the request would fit (0 when allowed)
    limit: float  # the tightest bucket's burst
    remaining: float  # tokens left in it
    reset: float  # seconds until it is full again


class Buckets(Protocol):
    async def take(self, charges: Sequence[Charge], cost: float) -> Decision: ...


def decide(
    charges: Sequence[Charge], levels: Sequence[float], cost: float, *, allowed: bool | None = None
) -> tuple[Decision, list[float]]:
    """The request fits when every bucket holds its cost (capped at the bucket's burst, so a cost above it is
    still served when the bucket is full); then every bucket pays, else none does. Returns the levels after.
    `allowed` passes on a verdict already taken by the same rule (in Redis)."""
    costs = [min(cost, c.limit.burst) for c in charges]
    if allowed is None:
        allowed = all(level >= need for level, need in zip(levels, costs, strict=True))
    after = [level - need for level, need in zip(levels, costs, strict=True)] if allowed else list(levels)
    retry = 0.0
    if not allowed:
        retry = max(
            max(0.0, need - level) / c.limit.rate
            for c, level, need in zip(charges, levels, costs, strict=True)
        )
    tightest = min(range(len(charges)), key=lambda i: after[i] / charges[i].limit.burst)
    limit = charges[tightest].limit
    remaining = max(0.0, after[tightest])
    return (
        Decision(
            allowed=allowed,
            retry_after=retry,
            limit=limit.burst,
            remaining=remaining,
            reset=(limit.burst - remaining) / limit.rate,
        ),
        after,
    )


class LocalBuckets:
    """Buckets in this process (one replica, or Redis unreachable); a lock makes check-and-pay atomic."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_buckets: int = 100_000) -> None:
        self._clock = clock
        self._max = max_buckets
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float, float]] = {}  # name -> (level, at, when it is full again)

    def take_now(self, charges: Sequence[Charge], cost: float) -> Decision:
        with self._lock:
            now = self._clock()
            levels = []
            for c in charges:
                level, at, _ = self._state.get(c.name, (c.limit.burst, now, now))
                levels.append(min(c.limit.burst, level + max(0.0, now - at) * c.limit.rate))
            decision, after = decide(charges, levels, cost)
            for c, level in zip(charges, after, strict=True):
                self._state[c.name] = (level, now, now + (c.limit.burst - level) / c.limit.rate)
            if len(self._state) > self._max:
                self._forget_full(now)
            return decision

    async def take(self, charges: Sequence[Charge], cost: float) -> Decision:
        return self.take_now(charges, cost)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that are full again: forgetting them changes nothing."""
        stale = [name for name, (_, _, full_at) in self._state.items() if full_at <= now]
        for name in stale:
            del self._state[name]


def whole_seconds(value: float) -> int:
    """A header's seconds: rounded up, so a client that waits that long finds the tokens there."""
    return max(0, math.ceil(value - 1e-9))
