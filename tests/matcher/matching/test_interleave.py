"""Team-draft interleaving: each item once, balanced teams, fair to rankers users do not prefer."""

from __future__ import annotations

import random

import numpy as np

from matcher.matching.interleave import CANDIDATE, INCUMBENT, preference, team_draft

# ---------------------------------------------------------------- team-draft interleaving


def test_team_draft_takes_each_item_once_and_keeps_the_teams_balanced():
    a = list("abcdefgh")
    b = list("hgfedcba")
    for seed in range(50):
        merged = team_draft(a, b, 8, random.Random(seed))
        items = [i for i, _ in merged]
        assert sorted(items) == sorted(a)  # every item once
        for n in range(1, len(merged) + 1):  # every prefix: the teams' picks differ by at most one
            picks = [t for _, t in merged[:n]]
            assert abs(picks.count(INCUMBENT) - picks.count(CANDIDATE)) <= 1
        # each team's picks appear in its own ranker's order
        for team, order in ((INCUMBENT, a), (CANDIDATE, b)):
            mine = [i for i, t in merged if t == team]
            assert mine == sorted(mine, key=order.index)


def test_team_draft_of_one_ranking_is_that_ranking_and_a_short_list_is_filled_by_the_other():
    a = [1, 2, 3, 4, 5]
    assert [i for i, _ in team_draft(a, a, 5, random.Random(3))] == a
    merged = team_draft([1, 2], [3, 4, 5, 6], 5, random.Random(0))
    assert len(merged) == 5 and {i for i, _ in merged} <= {1, 2, 3, 4, 5, 6}
    assert [t for i, t in merged if i in (1, 2)] == [INCUMBENT, INCUMBENT]
    assert team_draft([], [], 3, random.Random(0)) == []


def test_users_who_prefer_neither_order_do_not_favour_either_ranker():
    """Position bias cancels: random examination and acceptance give no preference on average."""
    rng = random.Random(7)
    a = list(range(20))
    b = list(reversed(a))
    prefs = []
    for _ in range(4000):
        merged = team_draft(a, b, 10, rng)
        positives = {i for pos, (i, _) in enumerate(merged, 1) if rng.random() < 0.6 / pos}
        prefs.append(preference(dict(merged), positives))
    assert abs(np.mean(prefs)) < 0.03


def test_preference_is_the_sign_of_the_positive_outcomes_per_team():
    teams = {1: INCUMBENT, 2: CANDIDATE, 3: CANDIDATE}
    assert preference(teams, {2, 3}) == 1
    assert preference(teams, {1}) == -1
    assert preference(teams, {1, 2}) == 0
    assert preference(teams, set()) == 0
    assert preference(teams, {99}) == 0  # an item not in the list counts for nobody
