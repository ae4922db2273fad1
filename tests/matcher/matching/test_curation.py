"""The pipeline's curation step on its own: which pins are fetched, and pins first within the list's length."""

from __future__ import annotations

import numpy as np

from matcher.matching.curation import pinned_first, pins_to_fetch
from matcher.matching.retrieval import Candidate


def cand(i: int, score: float) -> Candidate:
    c = Candidate(id=i, meta=None, dense=0.0, lexical=0.0)  # type: ignore[arg-type]
    c.score = score
    return c


def test_only_pins_that_pass_the_hard_filters_are_fetched():
    assert pins_to_fetch(frozenset(), None) == []
    assert pins_to_fetch(frozenset({3, 1}), None) == [1, 3]  # no restriction: every pin
    assert pins_to_fetch(frozenset({1, 3, 9}), np.array([2, 3, 4, 9])) == [3, 9]


def test_pins_lead_and_the_list_keeps_its_length():
    ranked = [cand(1, 0.9), cand(2, 0.8), cand(3, 0.7), cand(4, 0.2), cand(5, 0.1)]
    selected = ranked[:3]
    assert pinned_first(ranked, selected, frozenset(), 3) == selected
    out = pinned_first(ranked, selected, frozenset({5, 4}), 3)
    assert [c.id for c in out] == [4, 5, 1]  # pins by score, then the selection without them
    out = pinned_first(ranked, selected, frozenset({2}), 3)
    assert [c.id for c in out] == [2, 1, 3]
