"""The selection stage: which ranked candidates make the list. At most N per provider (`diversify`), and when
several kinds are asked together, a share of the list for each of them (`share_kinds`): 3,000 research results
must not crowd 20 funds out of a list that asked for results and funds."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matcher.matching.retrieval import Candidate


def diversify(cands: list[Candidate], per_provider: int, k: int) -> list[Candidate]:
    """The best `k`, at most `per_provider` from any one provider (0: no limit)."""
    if per_provider <= 0:
        return cands[:k]
    seen: dict[str, int] = {}
    out = []
    for c in cands:
        p = (c.meta.provider or "").strip().lower()
        if p:
            if seen.get(p, 0) >= per_provider:
                continue
            seen[p] = seen.get(p, 0) + 1
        out.append(c)
        if len(out) >= k:
            break
    return out


def kind_quota(k: int, kinds: int) -> int:
    """Places guaranteed to each kind asked: half the list shared out evenly (k=10, two kinds: 3 each)."""
    return max(1, math.ceil(k / (2 * kinds))) if kinds > 1 else 0


def share_kinds(cands: list[Candidate], kinds: Sequence[str], per_provider: int, k: int) -> list[Candidate]:
    """The best `k` of `cands` (already in list order, above the score floor), at most `per_provider` per
    provider, in which each kind of `kinds` that has candidates holds at least `kind_quota` places (or all it
    has). When k cannot hold every kind's quota, the kinds whose best candidate ranks higher come first. The
    list keeps the order of `cands`."""
    pool = diversify(cands, per_provider, len(cands))
    if len(kinds) < 2:
        return pool[:k]
    quota = kind_quota(k, len(kinds))
    rank = {c.id: i for i, c in enumerate(pool)}
    by_kind = {kind: [c for c in pool if c.meta.kind == kind] for kind in kinds}
    chosen: set[int] = set()
    for kind in sorted((x for x in kinds if by_kind[x]), key=lambda x: rank[by_kind[x][0].id]):
        for c in by_kind[kind][: max(0, min(quota, k - len(chosen)))]:
            chosen.add(c.id)
    for c in pool:
        if len(chosen) >= k:
            break
        chosen.add(c.id)
    return [c for c in pool if c.id in chosen]
