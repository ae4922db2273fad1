"""The pipeline's curation step: an enterprise's pinned resources come first in its lists (when they pass the
hard filters), its blocked ones never appear (they join the filter's exclusions in query.py)."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from matcher.matching.retrieval import Candidate


def pins_to_fetch(pinned: Collection[int], allowed: np.ndarray | None) -> list[int]:
    """The pinned ids that pass the hard filters: retrieval scores them even when neither index finds them."""
    if not pinned:
        return []
    ids = np.fromiter(sorted(pinned), dtype=np.int64, count=len(pinned))
    if allowed is not None:
        ids = ids[np.isin(ids, allowed)]
    return [int(i) for i in ids]


def pinned_first(
    ranked: list[Candidate], selected: list[Candidate], pinned: Collection[int], limit: int
) -> list[Candidate]:
    """The pinned candidates (best first), then the selection without them, cut to `limit`."""
    if not pinned:
        return selected
    pins = [c for c in ranked if c.id in pinned]
    rest = [c for c in selected if c.id not in pinned]
    return (pins + rest)[:limit]
