"""Buckets shared by every replica through Redis (one atomic Lua script per request), in process while it is down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from matcher.quota.buckets import Charge, Decision, LocalBuckets, decide

logger = logging.getLogger(__name__)

# KEYS: the buckets; ARGV: cost, then rate and burst of each bucket. Redis's own clock refills them, so replicas
# whose clocks differ still agree. Returns 1 or 0 (allowed), then each bucket's level before paying, as strings
# (a Lua number returned to Redis is cut to an integer).
TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local cost = tonumber(ARGV[1])
local levels = {}
local allowed = 1
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'level', 'at')
  local level = tonumber(state[1])
  local at = tonumber(state[2])
  if level == nil or at == nil then
    level = burst
    at = now
  end
  level = math.min(burst, level + math.max(0, now - at) * rate)
  levels[i] = level
  if level < math.min(cost, burst) then
    allowed = 0
  end
end
local out = {allowed}
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i])
  local burst = tonumber(ARGV[2 * i + 1])
  local level = levels[i]
  if allowed == 1 then
    level = level - math.min(cost, burst)
  end
  redis.call('HSET', KEYS[i], 'level', tostring(level), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil((burst - level) / rate * 1000) + 1000)
  out[#out + 1] = tostring(levels[i])
end
return out
"""


class RedisBuckets:
    """Buckets in Redis under `prefix`. When Redis fails, requests are decided by in-process buckets (logged once
    per outage) and Redis is tried again after `retry_s`: an outage never turns into an error for the caller."""

    def __init__(
        self, url: str, *, prefix: str = "parkmatch:rl:", timeout_s: float = 0.25, retry_s: float = 10.0
    ):
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.fallback = LocalBuckets()
        self._client: aioredis.Redis | None = None
        self._script_obj: AsyncScript | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down_until = 0.0
        self._down = False

    def _script(self) -> AsyncScript:
        # an asyncio client belongs to the event loop that made it (a test client runs one loop per app start)
        loop = asyncio.get_running_loop()
        if self._script_obj is None or self._loop is not loop:
            self._client = aioredis.Redis.from_url(
                self.url, socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s
            )
            self._script_obj = self._client.register_script(TAKE)
            self._loop = loop
        return self._script_obj

    async def take(self, charges: Sequence[Charge], cost: float) -> Decision:
        if self._down and time.monotonic() < self._down_until:
            return self.fallback.take_now(charges, cost)
        try:
            reply = await self._script()(
                keys=[self.prefix + c.name for c in charges],
                args=[cost, *(v for c in charges for v in (c.limit.rate, c.limit.burst))],
            )
        except (RedisError, OSError) as exc:
            if not self._down:
                logger.warning(
                    "rate limits: Redis unreachable (%s: %s); deciding in process until it answers again",
                    type(exc).__name__,
                    exc,
                )
            self._down = True
            self._down_until = time.monotonic() + self.retry_s
            return self.fallback.take_now(charges, cost)
        if self._down:
            logger.warning("rate limits: Redis answers again; buckets are shared between replicas")
            self._down = False
        levels = [float(v) for v in reply[1:]]
        # the levels come back rounded to 14 digits: the script's verdict, taken on the exact ones, stands
        decision, _ = decide(charges, levels, cost, allowed=bool(int(reply[0])))
        return decision

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            self._script_obj = None
