"""Team-draft interleaving: show one list made of two rankers' lists, and credit each outcome to one of them.

A ranker that an offline comparison cannot prove better (its gains lie in matches the ranker in service never
showed, so the log cannot credit them) is put on *trial*: for a share of requests the served list interleaves
the incumbent's order (team ``A``) with the candidate's (team ``B``). Each round the team with fewer picks so
far (a coin decides ties) adds its best item not yet in the list (Radlinski, Kurup and Joachims 2008, "How does
clickthrough data reflect retrieval quality?"). Both teams get the top positions equally often, so position
bias cancels out: a user who prefers neither order credits both teams alike, and a list's preference is the
sign of (positive outcomes on B's items - positive outcomes on A's). `matcher.models.trial` turns the preferences of
many lists into a verdict with a confidence interval."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)

INCUMBENT = "A"
CANDIDATE = "B"


def team_draft(a: Sequence[T], b: Sequence[T], k: int, rng: random.Random) -> list[tuple[T, str]]:
    """Interleave rankings `a` (incumbent) and `b` (candidate) into at most `k` distinct items, each with the
    team that contributed it. When one list runs out the other fills the remaining places."""
    out: list[tuple[T, str]] = []
    used: set[T] = set()
    ia = ib = picks_a = picks_b = 0

    def next_from(lst: Sequence[T], i: int) -> int:
        while i < len(lst) and lst[i] in used:
            i += 1
        return i

    while len(out) < k:
        ia, ib = next_from(a, ia), next_from(b, ib)
        a_left, b_left = ia < len(a), ib < len(b)
        if not (a_left or b_left):
            break
        take_a = a_left and (not b_left or picks_a < picks_b or (picks_a == picks_b and rng.random() < 0.5))
        if take_a:
            item, ia, picks_a = a[ia], ia + 1, picks_a + 1
            out.append((item, INCUMBENT))
        else:
            item, ib, picks_b = b[ib], ib + 1, picks_b + 1
            out.append((item, CANDIDATE))
        used.add(item)
    return out


def preference(teams: dict[T, str], positives: set[T]) -> int:
    """+1 when the candidate's items drew more positive outcomes than the incumbent's, -1 when fewer, 0 on a
    tie (including a list nobody reacted to). Items not in `teams` are ignored."""
    b = sum(1 for item in positives if teams.get(item) == CANDIDATE)
    a = sum(1 for item in positives if teams.get(item) == INCUMBENT)
    return (b > a) - (b < a)
