"""The record id -> slot map of the indexes: a direct numpy table for dense ids, a dict for sparse ones."""

from __future__ import annotations

import numpy as np


class IdMap:
    """int64 record id -> int64 slot. A direct numpy table for the usual dense non-negative SQL ids
    (vectorised look-ups of big ``allowed`` sets), a dict for ids that would make the table sparse."""

    __slots__ = ("_table", "_extra", "_n")

    def __init__(self) -> None:
        self._table = np.full(0, -1, dtype=np.int64)
        self._extra: dict[int, int] = {}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def _grow(self, max_id: int, incoming: int) -> None:
        cap = self._table.size
        allowance = max(1 << 16, 8 * (self._n + incoming))
        if max_id < cap or max_id >= allowance:
            return
        new_cap = min(max(max_id + 1, 2 * cap), allowance)
        table = np.full(new_cap, -1, dtype=np.int64)
        table[:cap] = self._table
        self._table = table
        if self._extra:  # entries that fit now move into the table
            for key in [k for k in self._extra if 0 <= k < new_cap]:
                table[key] = self._extra.pop(key)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        cap = self._table.size
        inr = (ids >= 0) & (ids < cap)
        out = np.full(ids.size, -1, dtype=np.int64)
        out[inr] = self._table[ids[inr]]
        if self._extra and not inr.all():
            get = self._extra.get
            for j in np.flatnonzero(~inr).tolist():
                out[j] = get(int(ids[j]), -1)
        return out

    def assign(self, ids: np.ndarray, slots: np.ndarray) -> None:
        """Map new ids (not currently present) to slots."""
        if ids.size == 0:
            return
        self._grow(int(ids.max()), ids.size)
        cap = self._table.size
        inr = (ids >= 0) & (ids < cap)
        self._table[ids[inr]] = slots[inr]
        if not inr.all():
            for i, s in zip(ids[~inr].tolist(), slots[~inr].tolist(), strict=True):
                self._extra[i] = s
        self._n += ids.size

    def discard(self, ids: np.ndarray) -> None:
        """Forget present ids."""
        if ids.size == 0:
            return
        cap = self._table.size
        inr = (ids >= 0) & (ids < cap)
        self._table[ids[inr]] = -1
        if not inr.all():
            for i in ids[~inr].tolist():
                self._extra.pop(i, None)
        self._n -= ids.size

    def nbytes(self) -> int:
        return int(self._table.nbytes) + 100 * len(self._extra)
