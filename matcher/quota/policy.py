"""What a request costs and which buckets it is charged to, from Settings."""

from __future__ import annotations

import re

from matcher.quota.buckets import Buckets, Charge, Limit, LocalBuckets
from matcher.settings import Settings

# probes and the metrics scrape must answer while a caller is over its limit
EXEMPT = frozenset({"/healthz", "/readyz", "/metrics"})
# the workbench's and the API docs' own scripts and styles: files, not work
EXEMPT_PREFIXES = ("/ui/static/", "/static/docs/")
# whole files in, a digest for every subscribed enterprise, an event's meeting plan, a chain's placement
_BULK = re.compile(
    r"(:import$|^/v1/imports?(/|$)|/digests:run$|^/v1/events/[^/]+/schedule$|^/v1/chains/[^/]+/placement$)"
)
# a run of the match pipeline
_MATCH = re.compile(r"(^/v1/match$|^/v1/search$|/matches$|^/v1/digests/preview$)")


def route_cost(settings: Settings, path: str) -> float:
    """Tokens a request to `path` takes: 0 for probes, more for the routes that run the match pipeline or bulk
    work than for plain reads and writes."""
    if path in EXEMPT or path.startswith(EXEMPT_PREFIXES):
        return 0.0
    if _BULK.search(path):
        return settings.rate_cost_bulk
    if _MATCH.search(path):
        return settings.rate_cost_match
    return 1.0


def _tag(name: str) -> str:
    # braces make Redis Cluster keep a tenant's buckets in one slot, as one script touches them together
    return "{" + name.replace("{", "(").replace("}", ")") + "}"


def key_charges(settings: Settings, tenant: str, key_id: int) -> list[Charge]:
    """A verified key pays into its own bucket and its tenant's."""
    return [
        Charge(f"{_tag(tenant)}:key:{key_id}", Limit(settings.rate_key_per_s, settings.rate_key_burst)),
        Charge(f"{_tag(tenant)}:tenant", Limit(settings.rate_tenant_per_s, settings.rate_tenant_burst)),
    ]


def person_charges(settings: Settings, tenant: str, user_id: int) -> list[Charge]:
    """A person signed in to the workbench pays into a bucket of their own (a key's size) and their tenant's."""
    return [
        Charge(f"{_tag(tenant)}:user:{user_id}", Limit(settings.rate_key_per_s, settings.rate_key_burst)),
        Charge(f"{_tag(tenant)}:tenant", Limit(settings.rate_tenant_per_s, settings.rate_tenant_burst)),
    ]


def anonymous_charges(settings: Settings, client: str) -> list[Charge]:
    """No valid key: the client address pays."""
    return [
        Charge(
            f"{_tag('anon:' + client)}", Limit(settings.rate_anonymous_per_s, settings.rate_anonymous_burst)
        )
    ]


def make_buckets(settings: Settings) -> Buckets:
    """Shared through Redis when MATCHER_REDIS_URL names one, else in this process."""
    if settings.redis_url:
        from matcher.quota.shared import RedisBuckets  # the redis client is needed only then

        return RedisBuckets(settings.redis_url)
    return LocalBuckets()
