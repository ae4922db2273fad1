"""The meeting solver: feasibility of every plan, optimality against brute force, the bound, preferences."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from matcher.events.slotting import colour
from matcher.events.solver import Problem, solve


def _problem(scores, slots=3, tables=2, cap=2, **kw) -> Problem:
    scores = np.asarray(scores, dtype=float)
    d, s = scores.shape
    return Problem(scores, slots, tables, np.full(d, cap), np.full(s, cap), **kw)


def _check_feasible(p: Problem, sol) -> None:
    seen = set()
    per_slot = Counter()
    per_person = Counter()
    pairs = set()
    for m in sol.meetings:
        assert (m.demand, m.supply) not in pairs, "a pair meets twice"
        pairs.add((m.demand, m.supply))
        for who in (("d", m.demand), ("s", m.supply)):
            assert (who, m.slot) not in seen, f"{who} twice in slot {m.slot}"
            seen.add((who, m.slot))
            per_person[who] += 1
        assert ("table", m.slot, m.table) not in seen
        seen.add(("table", m.slot, m.table))
        assert 0 <= m.table < p.tables and 0 <= m.slot < p.slots
        per_slot[m.slot] += 1
        assert (m.demand, m.supply) not in p.avoided
    assert all(n <= p.tables for n in per_slot.values())
    for (side, k), n in per_person.items():
        cap = p.cap_demand[k] if side == "d" else p.cap_supply[k]
        assert n <= min(cap, p.slots)


def _brute_force(p: Problem, coverage: float = 0.0) -> float:
    """The best total over every set of pairs within the caps and the room (tiny problems only)."""
    d, s = p.scores.shape
    pairs = [(i, j) for i in range(d) for j in range(s) if p.scores[i, j] > 0 and (i, j) not in p.avoided]
    best = 0.0
    for r in range(len(pairs) + 1):
        for chosen in itertools.combinations(pairs, r):
            if len(chosen) > p.slots * p.tables:
                continue
            cd, cs = Counter(i for i, _ in chosen), Counter(j for _, j in chosen)
            if any(n > min(p.cap_demand[i], p.slots) for i, n in cd.items()):
                continue
            if any(n > min(p.cap_supply[j], p.slots) for j, n in cs.items()):
                continue
            covered = len(cd) + len(cs)
            best = max(best, sum(p.scores[i, j] for i, j in chosen) + coverage * covered)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_small_plans_are_optimal_and_feasible(seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((3, 4)) * (rng.random((3, 4)) > 0.3)
    p = _problem(scores, slots=2, tables=2, cap=2)
    sol = solve(p)
    _check_feasible(p, sol)
    assert sol.objective == pytest.approx(_brute_force(p), abs=1e-6)
    assert sol.bound >= sol.objective - 1e-9
    assert sol.gap == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_with_a_coverage_bonus_plans_are_optimal_too(seed):
    rng = np.random.default_rng(10 + seed)
    scores = rng.random((3, 3)) * (rng.random((3, 3)) > 0.2)
    p = _problem(scores, slots=2, tables=2, cap=2)
    sol = solve(p, coverage=0.3)
    _check_feasible(p, sol)
    assert sol.objective == pytest.approx(_brute_force(p, coverage=0.3), abs=1e-6)
    assert sol.gap == pytest.approx(0.0, abs=1e-6)


def test_a_coverage_bonus_seats_everyone_the_room_allows():
    scores = np.array([[0.9, 0.9], [0.1, 0.1]])  # enterprise 0 fits both holders far better than enterprise 1
    p = _problem(scores, slots=2, tables=1, cap=2)
    plain = solve(p)
    assert {m.demand for m in plain.meetings} == {0}  # the best total leaves enterprise 1 out
    covering = solve(p, coverage=1.0)
    assert {m.demand for m in covering.meetings} == {0, 1}
    assert covering.total_score == pytest.approx(1.0) and covering.objective == pytest.approx(5.0)


def test_the_bound_covers_pairs_outside_the_candidates():
    """With one candidate per participant to start, column generation still reaches the full optimum, and the
    bound is over every pair."""
    rng = np.random.default_rng(3)
    p = _problem(rng.random((30, 20)), slots=4, tables=6, cap=3)
    narrow, wide = solve(p, top_k=1), solve(p, top_k=100)
    assert narrow.objective == pytest.approx(wide.objective, rel=1e-6)
    assert narrow.rounds > 1
    assert narrow.bound == pytest.approx(wide.objective, rel=1e-6)
    _check_feasible(p, narrow)


def test_every_slot_holds_at_most_the_tables_even_when_the_room_is_full():
    rng = np.random.default_rng(5)
    p = _problem(rng.random((25, 25)) + 0.01, slots=5, tables=7, cap=5)
    sol = solve(p)
    _check_feasible(p, sol)
    assert len(sol.meetings) == 35  # every place taken
    assert Counter(m.slot for m in sol.meetings) == {k: 7 for k in range(5)}


def test_avoided_pairs_never_meet_and_wanted_pairs_do():
    scores = np.array([[0.9, 0.1], [0.8, 0.2]])
    p = _problem(scores, slots=1, tables=2, cap=1, avoided=frozenset({(0, 0)}), wanted=frozenset({(1, 1)}))
    sol = solve(p)
    pairs = {(m.demand, m.supply) for m in sol.meetings}
    # (1, 1) is wanted, so supply 1 is taken; (0, 0) is avoided; demand 1 is taken: demand 0 meets nobody
    assert pairs == {(1, 1)}
    assert next(m for m in sol.meetings if (m.demand, m.supply) == (1, 1)).wanted
    _check_feasible(p, sol)


def test_a_wanted_pair_with_no_score_still_meets_and_wants_beyond_the_cap_are_reported():
    scores = np.zeros((1, 3))
    p = _problem(scores, slots=3, tables=1, cap=2, wanted=frozenset({(0, 0), (0, 1), (0, 2)}))
    sol = solve(p)
    assert len(sol.meetings) == 2
    assert [code for _, _, code in sol.unmet_wants] == ["cap_reached"]


def test_a_pair_both_wanted_and_avoided_does_not_meet():
    p = _problem([[0.5]], wanted=frozenset({(0, 0)}), avoided=frozenset({(0, 0)}))
    sol = solve(p)
    assert sol.meetings == []
    assert sol.unmet_wants == [(0, 0, "avoided")]


def test_pairs_without_a_score_do_not_meet():
    p = _problem([[0.0, np.nan], [0.0, 0.0]])
    sol = solve(p)
    assert sol.meetings == [] and sol.objective == 0 and sol.gap == 0


def test_colouring_refuses_more_meetings_than_places():
    with pytest.raises(ValueError, match="do not fit"):
        colour([(0, 0), (1, 1), (2, 2)], 3, 1, 2)


def test_colouring_of_a_dense_regular_graph_uses_every_slot_fully():
    pairs = [(i, j) for i in range(6) for j in range(6)]  # 6-regular: 6 slots of 6 meetings
    slots = colour(pairs, 6, 6, 6)
    assert Counter(slots) == {k: 6 for k in range(6)}
    for k in range(6):
        chosen = [pairs[e] for e, s in enumerate(slots) if s == k]
        assert len({i for i, _ in chosen}) == 6 and len({j for _, j in chosen}) == 6
