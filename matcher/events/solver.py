"""The 1:1 meeting plan of a docking event as an optimisation problem, solved with HiGHS (scipy.optimize).

Demand-side participants (rows) meet supply-side participants (columns); `scores[i, j]` is the quality of a
meeting, 0 or less where the pair does not fit. A plan picks pairs, each to meet at most once, and puts each
pair in a time slot at a table:

    maximise   sum of scores of the chosen pairs
    subject to every participant meets at most `cap` times (and at most once a slot),
               at most `tables` meetings in a slot,
               pairs either side wants to avoid never meet, wanted pairs meet (within the caps).

Two exact steps. (1) Which pairs meet: a b-matching with one cardinality row (sum over the pairs <= slots x
tables), whose constraint matrix is totally unimodular, so HiGHS's LP optimum is integral; it is solved as a MILP
(`scipy.optimize.milp`) on a candidate set (each participant's best `top_k` pairs and the wanted ones), grown by
column generation: every pair left out whose reduced cost under the LP duals is positive joins the set, until none
is. (2) When they meet: with every participant in at most `slots` meetings and at most slots x tables meetings,
a bipartite multigraph's edges can be coloured with `slots` colours so that no vertex sees a colour twice (König)
and, by swapping colours along alternating paths, so that no colour is used more than `tables` times (de Werra's
equitable colouring). So the slotting never loses a chosen pair.

The bound is LP duality over *all* pairs, not only the candidates: the restricted LP's dual solution, extended to
every pair left out with z = max(0, reduced cost), is feasible for the full LP, so its value bounds every plan."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from matcher.events.slotting import colour, seat

EPS = 1e-9


@dataclass(frozen=True)
class Problem:
    scores: np.ndarray  # (demand, supply) meeting quality; <= 0 or NaN: the pair does not fit
    slots: int
    tables: int
    cap_demand: np.ndarray  # most meetings per demand-side participant
    cap_supply: np.ndarray
    wanted: frozenset[tuple[int, int]] = frozenset()  # (demand, supply) pairs one side asked to meet
    avoided: frozenset[tuple[int, int]] = frozenset()  # pairs one side asked not to meet

    @property
    def shape(self) -> tuple[int, int]:
        return self.scores.shape  # type: ignore[return-value]


@dataclass(frozen=True)
class Placed:
    demand: int
    supply: int
    slot: int
    table: int
    score: float
    wanted: bool = False


@dataclass
class Solution:
    meetings: list[Placed]
    objective: float  # total score of the plan (with the coverage bonus, when one is given)
    bound: float  # no plan of this problem scores more
    total_score: float  # the scores of the meetings alone
    status: str  # optimal | time_limit
    candidates: int  # pairs the last LP/MILP held
    rounds: int  # column-generation rounds
    unmet_wants: list[tuple[int, int, str]] = field(default_factory=list)  # (demand, supply, reason code)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """(bound - objective) / bound: 0 proves the plan optimal."""
        if self.bound <= EPS:
            return 0.0
        return max(0.0, (self.bound - self.objective) / self.bound)


class _Residual:
    """What is left of each cap once the wanted pairs are fixed."""

    def __init__(self, p: Problem) -> None:
        self.demand = np.minimum(np.asarray(p.cap_demand, dtype=np.int64), p.slots).clip(min=0)
        self.supply = np.minimum(np.asarray(p.cap_supply, dtype=np.int64), p.slots).clip(min=0)
        self.total = p.slots * p.tables

    def take(self, i: int, j: int) -> str | None:
        """Reserve one meeting of (i, j); the reason code when it does not fit."""
        if self.total <= 0:
            return "event_full"
        if self.demand[i] <= 0 or self.supply[j] <= 0:
            return "cap_reached"
        self.demand[i] -= 1
        self.supply[j] -= 1
        self.total -= 1
        return None


def _weights(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """(scores with NaN as 0, the pairs that may meet)."""
    w = np.nan_to_num(np.asarray(p.scores, dtype=np.float64), nan=0.0, neginf=0.0, posinf=0.0)
    ok = w > EPS
    for i, j in p.avoided:
        ok[i, j] = False
    return w, ok


def _fix_wanted(p: Problem, w: np.ndarray, res: _Residual) -> tuple[list[tuple[int, int]], list]:
    """Wanted pairs meet first, best score first, as far as the caps allow; the others are reported."""
    fixed, unmet = [], []
    for i, j in sorted(p.wanted, key=lambda ij: (-w[ij], ij)):
        if (i, j) in p.avoided:
            unmet.append((i, j, "avoided"))
            continue
        reason = res.take(i, j)
        if reason is None:
            fixed.append((i, j))
        else:
            unmet.append((i, j, reason))
    return fixed, unmet


def _top_k(w: np.ndarray, ok: np.ndarray, k: int) -> np.ndarray:
    """The mask of each row's and each column's best k pairs among those that may meet."""
    masked = np.where(ok, w, -np.inf)
    keep = np.zeros_like(ok)
    d, s = w.shape
    if s and d:
        kr = min(k, s)
        rows = np.argpartition(-masked, kr - 1, axis=1)[:, :kr]
        keep[np.arange(d)[:, None], rows] = True
        kc = min(k, d)
        cols = np.argpartition(-masked, kc - 1, axis=0)[:kc, :]
        keep[cols, np.arange(s)[None, :]] = True
    return keep & ok


class _Model:
    """The LP and the MILP over a set of candidate pairs. Columns: the pairs, then, with a coverage bonus, one
    "has a meeting" column per participant (worth the bonus, at most 1, at most its meetings). Rows: the demand
    caps, the supply caps, the room, then, with a bonus, one coverage row per participant."""

    def __init__(self, w: np.ndarray, res: _Residual, coverage: float, fixed: list[tuple[int, int]]) -> None:
        self.w, self.coverage = w, coverage
        self.d, self.s = w.shape
        b = [res.demand, res.supply, [res.total]]
        if coverage > 0:  # a participant with a fixed (wanted) meeting has one already
            b += [
                np.bincount([i for i, _ in fixed], minlength=self.d),
                np.bincount([j for _, j in fixed], minlength=self.s),
            ]
        self.b = np.concatenate(b).astype(np.float64)

    def build(self, pairs: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
        d, s, n = self.d, self.s, len(pairs)
        ar = np.arange(n)
        rows = [pairs[:, 0], d + pairs[:, 1], np.full(n, d + s)]
        cols, vals = [ar, ar, ar], [np.ones(n)] * 3
        c = [self.w[pairs[:, 0], pairs[:, 1]]]
        if self.coverage > 0:
            base = d + s + 1
            rows += [base + pairs[:, 0], base + d + pairs[:, 1], base + np.arange(d + s)]
            cols += [ar, ar, n + np.arange(d + s)]
            vals += [-np.ones(n), -np.ones(n), np.ones(d + s)]
            c.append(np.full(d + s, self.coverage))
        shape = (len(self.b), n + (d + s if self.coverage > 0 else 0))
        a = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)
        return np.concatenate(c), a

    def reduced_costs(self, y: np.ndarray) -> np.ndarray:
        """Every pair's reduced cost under the row duals y >= 0."""
        d, s = self.d, self.s
        rc = self.w - y[:d, None] - y[None, d : d + s] - y[d + s]
        if self.coverage > 0:
            base = d + s + 1
            rc = rc + y[base : base + d, None] + y[None, base + d : base + d + s]
        return rc

    def lp(self, pairs: np.ndarray) -> tuple[float, np.ndarray]:
        """The restricted LP: (its optimum, duals y >= 0 of the rows)."""
        c, a = self.build(pairs)
        if c.size == 0:
            return 0.0, np.zeros(len(self.b))
        r = linprog(-c, A_ub=a, b_ub=self.b, bounds=(0, 1), method="highs")
        if r.status != 0:
            raise RuntimeError(f"LP failed: {r.message}")
        return float(-r.fun), -np.asarray(r.ineqlin.marginals)

    def milp(self, pairs: np.ndarray, deadline: float) -> tuple[np.ndarray, float, str]:
        """(which pairs meet, the objective's value, optimal | time_limit)."""
        c, a = self.build(pairs)
        if c.size == 0:
            return np.zeros(0, dtype=bool), 0.0, "optimal"
        r = milp(
            -c,
            constraints=LinearConstraint(a, -np.inf, self.b),
            bounds=Bounds(0, 1),
            integrality=np.ones(c.size),
            options={"time_limit": max(1.0, deadline - time.perf_counter()), "mip_rel_gap": 1e-6},
        )
        if r.x is None:
            raise RuntimeError(f"MILP found no plan: {r.message}")
        x = np.asarray(r.x) > 0.5
        return x[: len(pairs)], float(c @ x), "optimal" if r.status == 0 else "time_limit"


def _select(
    model: _Model, allowed: np.ndarray, top_k: int, deadline: float
) -> tuple[np.ndarray, float, float, str, int, int]:
    """Column generation to the LP optimum over all pairs `allowed`, then the MILP on the final candidates.
    Returns (chosen pairs, their objective, the bound, status, candidates, rounds)."""
    in_set = _top_k(model.w, allowed, max(1, top_k))
    rounds, bound = 0, float("inf")
    while True:
        rounds += 1
        lp_value, y = model.lp(np.argwhere(in_set))
        rc = np.where(allowed & ~in_set, model.reduced_costs(y), 0.0)
        positive = rc > 1e-7
        bound = lp_value + float(rc[positive].sum())
        if not positive.any() or time.perf_counter() > deadline:
            break
        in_set |= positive
    pairs = np.argwhere(in_set)
    chosen, value, status = model.milp(pairs, deadline)
    return pairs[chosen], value, bound, status, len(pairs), rounds


def solve(p: Problem, *, top_k: int = 24, time_limit: float = 25.0, coverage: float = 0.0) -> Solution:
    """The best plan of `p` (see the module docstring), slotted and seated. `coverage` > 0 adds that much for
    each participant with at least one meeting (1 or more: seat as many participants as the room allows before
    anyone's next meeting); the objective and bound then include it."""
    t0 = time.perf_counter()
    deadline = t0 + time_limit
    w, ok = _weights(p)
    res = _Residual(p)
    fixed, unmet = _fix_wanted(p, w, res)
    for i, j in fixed:
        ok[i, j] = False
    model = _Model(w, res, coverage, fixed)
    free, value, bound, status, n_cand, rounds = _select(model, ok, top_k, deadline)
    t1 = time.perf_counter()
    wanted = set(fixed)
    pairs = [*fixed, *((int(i), int(j)) for i, j in free)]
    slot_of = colour(pairs, p.shape[0], p.slots, p.tables)
    table_of = seat(pairs, slot_of, p.tables)
    meetings = sorted(
        (
            Placed(i, j, slot_of[e], table_of[e], float(w[i, j]), (i, j) in wanted)
            for e, (i, j) in enumerate(pairs)
        ),
        key=lambda m: (m.slot, m.table),
    )
    fixed_score = float(sum(w[ij] for ij in fixed))
    objective = fixed_score + value
    return Solution(
        meetings=meetings,
        objective=objective,
        bound=max(objective, fixed_score + bound),
        total_score=fixed_score + float(sum(w[i, j] for i, j in free)),
        status=status,
        candidates=n_cand,
        rounds=rounds,
        unmet_wants=unmet,
        seconds={"select": round(t1 - t0, 3), "slot": round(time.perf_counter() - t1, 3)},
    )
