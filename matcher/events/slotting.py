"""When and where chosen meetings take place: a proper edge colouring of the bipartite meeting graph with one
colour per time slot (König: `slots` colours suffice when nobody has more than `slots` meetings), balanced so
that no slot holds more meetings than the room has tables (alternating-path swaps, de Werra), then a table per
meeting, keeping each supply-side participant at one table as far as the slots allow."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

Pair = tuple[int, int]


class _Colouring:
    """Edge colours of a bipartite multigraph; vertex -> colour -> the edge of that colour there."""

    def __init__(self, ends: list[Pair], colours: int) -> None:
        self.ends = ends
        self.colours = colours
        self.colour = [-1] * len(ends)
        self.at: dict[int, dict[int, int]] = defaultdict(dict)

    def free(self, v: int) -> int:
        used = self.at[v]
        for c in range(self.colours):
            if c not in used:
                return c
        raise ValueError(f"vertex {v} has more than {self.colours} meetings")

    def other(self, e: int, v: int) -> int:
        a, b = self.ends[e]
        return b if a == v else a

    def path(self, start: int, first: int, second: int) -> list[int]:
        """The edges of the path from `start` whose colours alternate first, second, first ..."""
        out, v, c = [], start, first
        while c in self.at[v]:
            e = self.at[v][c]
            out.append(e)
            v = self.other(e, v)
            c = second if c == first else first
        return out

    def recolour(self, edges: list[int], a: int, b: int) -> None:
        """Swap colours a and b on `edges` (a path whose colours alternate a, b)."""
        for e in edges:
            for v in self.ends[e]:
                self.at[v].pop(self.colour[e], None)
        for e in edges:
            self.colour[e] = b if self.colour[e] == a else a
            for v in self.ends[e]:
                self.at[v][self.colour[e]] = e

    def add(self, e: int) -> None:
        u, v = self.ends[e]
        a, b = self.free(u), self.free(v)
        if a in self.at[v]:
            # b is free at v, a is not: flip the a/b path from v, which cannot reach u (bipartite), freeing a at v
            self.recolour(self.path(v, a, b), a, b)
        self.colour[e] = a
        self.at[u][a] = e
        self.at[v][a] = e

    def balance(self) -> None:
        """Until colour classes differ by at most one: move an edge from the largest class to the smallest
        by swapping both colours on an alternating path that starts and ends with the larger colour."""
        counts = [0] * self.colours
        for c in self.colour:
            counts[c] += 1
        while True:
            big = max(range(self.colours), key=lambda c: counts[c])
            small = min(range(self.colours), key=lambda c: counts[c])
            if counts[big] - counts[small] <= 1:
                return
            for v in list(self.at):
                if big in self.at[v] and small not in self.at[v]:
                    edges = self.path(v, big, small)
                    if len(edges) % 2 == 1:  # both ends are `big` edges: one more big than small
                        self.recolour(edges, big, small)
                        counts[big] -= 1
                        counts[small] += 1
                        break
            else:  # pragma: no cover - impossible: |big| > |small| leaves such a path
                raise RuntimeError("no alternating path to balance the slots")


def colour(pairs: Sequence[Pair], n_demand: int, slots: int, tables: int) -> list[int]:
    """A slot for each (demand, supply) pair: no participant twice in a slot, at most `tables` per slot.
    Needs every participant in at most `slots` pairs and at most slots x tables pairs (ValueError otherwise)."""
    if len(pairs) > slots * tables:
        raise ValueError(f"{len(pairs)} meetings do not fit {slots} slots x {tables} tables")
    g = _Colouring([(i, n_demand + j) for i, j in pairs], slots)
    for e in range(len(pairs)):
        g.add(e)
    g.balance()
    return g.colour


def seat(pairs: Sequence[Pair], slots_of: Sequence[int], tables: int) -> list[int]:
    """A table (0-based) for each pair in its slot; a supply-side participant keeps its first table when free."""
    by_slot: dict[int, list[int]] = defaultdict(list)
    for e, slot in enumerate(slots_of):
        by_slot[slot].append(e)
    home: dict[int, int] = {}
    table = [-1] * len(pairs)
    for slot in sorted(by_slot):
        used: set[int] = set()
        pending = []
        for e in sorted(by_slot[slot], key=lambda e: pairs[e][1]):
            h = home.get(pairs[e][1])
            if h is not None and h not in used:
                table[e] = h
                used.add(h)
            else:
                pending.append(e)
        free = (t for t in range(tables) if t not in used)
        for e in pending:
            t = next(free)
            table[e] = t
            used.add(t)
            home.setdefault(pairs[e][1], t)
    return table
