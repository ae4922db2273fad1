"""In-memory columns of what the hard filters test, so filtering 100k records is a few numpy ops.

One `Catalog` holds the resources (supply side), another the open needs and enterprises (demand side).
Rows are kept as small frozen dataclasses for fit and explanations; columns are numpy arrays indexed by
position, grown by doubling, with a tombstone flag for removed records."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

KIND_CODES = {"result": 1, "scenario": 2, "fund": 3, "incubator": 4, "need": 5, "enterprise": 6}
STAGE_BITS = {"seed": 1, "startup": 2, "growth": 4, "mature": 8}
NO_EXPIRY = date.max.toordinal()


@dataclass(frozen=True)
class Meta:
    """What fit and filters need to know of one record (either side)."""

    id: int  # index key (resources: resource id; demand: encoded need/enterprise key)
    kind: str
    tenant: str
    public: bool
    active: bool
    title: str
    industries: frozenset[str]  # with taxonomy ancestors
    own_industries: tuple[str, ...]
    region: str | None
    expires: date | None  # valid_until or scenario deadline, whichever comes first
    deadline: date | None = None
    stage: str | None = None  # enterprise stage (demand side)
    stages: tuple[str, ...] = ()  # fund stages
    ticket_min: float | None = None
    ticket_max: float | None = None
    budget: float | None = None
    amount: float | None = None  # need amount
    trl: int | None = None
    trl_min: int | None = None
    kinds_sought: tuple[str, ...] = ()
    provider: str | None = None
    updated: float = 0.0  # unix seconds
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def region_key(region: str | None) -> str | None:
    if not region:
        return None
    return region.strip().lower().removesuffix("区").removesuffix("市") or None


class Catalog:
    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.RLock()
        self.rows: dict[int, Meta] = {}
        self._pos: dict[int, int] = {}
        self._n = 0
        self._tenants: dict[str, int] = {}
        self._regions: dict[str, int] = {}
        self._tag_pos: dict[str, set[int]] = {}
        self._alloc(capacity)

    # ------------------------------------------------------------ storage
    def _alloc(self, capacity: int) -> None:
        def grow(name: str, dtype: Any, fill: Any) -> None:
            old = getattr(self, name, None)
            arr = np.full(capacity, fill, dtype=dtype)
            if old is not None:
                arr[: len(old)] = old
            setattr(self, name, arr)

        grow("ids", np.int64, -1)
        grow("alive", np.bool_, False)
        grow("kind", np.int8, 0)
        grow("tenant", np.int32, -1)
        grow("public", np.bool_, False)
        grow("active", np.bool_, False)
        grow("expires", np.int32, NO_EXPIRY)
        grow("region", np.int32, -1)
        grow("trl", np.int8, 0)
        grow("tmin", np.float64, np.nan)
        grow("tmax", np.float64, np.nan)
        grow("stage_bits", np.int8, 0)
        grow("sought_bits", np.int8, 0)
        self._cap = capacity

    def _intern(self, table: dict[str, int], value: str | None) -> int:
        if value is None:
            return -1
        code = table.get(value)
        if code is None:
            code = table[value] = len(table)
        return code

    def __len__(self) -> int:
        return len(self.rows)

    def upsert(self, metas: Iterable[Meta]) -> None:
        with self._lock:
            for m in metas:
                pos = self._pos.get(m.id)
                if pos is None:
                    if self._n >= self._cap:
                        self._alloc(self._cap * 2)
                    pos = self._n
                    self._n += 1
                    self._pos[m.id] = pos
                else:
                    old = self.rows[m.id]
                    for t in old.industries:
                        self._tag_pos.get(t, set()).discard(pos)
                self.rows[m.id] = m
                self.ids[pos] = m.id
                self.alive[pos] = True
                self.kind[pos] = KIND_CODES.get(m.kind, 0)
                self.tenant[pos] = self._intern(self._tenants, m.tenant)
                self.public[pos] = m.public
                self.active[pos] = m.active
                self.expires[pos] = m.expires.toordinal() if m.expires else NO_EXPIRY
                self.region[pos] = self._intern(self._regions, region_key(m.region))
                self.trl[pos] = m.trl or 0
                self.tmin[pos] = np.nan if m.ticket_min is None else m.ticket_min
                self.tmax[pos] = np.nan if m.ticket_max is None else m.ticket_max
                self.stage_bits[pos] = sum(STAGE_BITS.get(s, 0) for s in m.stages) or (
                    STAGE_BITS.get(m.stage or "", 0)
                )
                self.sought_bits[pos] = (
                    sum(1 << KIND_CODES[k] for k in m.kinds_sought if k in KIND_CODES) & 0x7F
                )
                for t in m.industries:
                    self._tag_pos.setdefault(t, set()).add(pos)

    def remove(self, ids: Iterable[int]) -> None:
        with self._lock:
            for i in ids:
                pos = self._pos.pop(i, None)
                if pos is None:
                    continue
                m = self.rows.pop(i)
                for t in m.industries:
                    self._tag_pos.get(t, set()).discard(pos)
                self.alive[pos] = False
                self.ids[pos] = -1

    def get(self, i: int) -> Meta | None:
        return self.rows.get(i)

    # ------------------------------------------------------------ filtering
    def mask(
        self,
        *,
        tenant: str,
        kinds: Iterable[str] | None = None,
        today: date | None = None,
        industries: Iterable[str] | None = None,
        regions: Iterable[str] | None = None,
        include_inactive: bool = False,
        stage: str | None = None,
        amount: float | None = None,
        trl_min: int | None = None,
        trl_max: int | None = None,
        sought_kind: str | None = None,
        exclude: Iterable[int] = (),
        only_tenant: bool = False,
    ) -> np.ndarray:
        """Boolean mask over positions [0, n) of records that pass every hard filter.

        Unknown values pass (a fund without a ticket range is not excluded by the amount); fit and the
        explanation mark them 'unknown'."""
        with self._lock:
            n = self._n
            m = self.alive[:n].copy()
            tcode = self._tenants.get(tenant, -2)
            if only_tenant:
                m &= self.tenant[:n] == tcode
            else:
                m &= self.public[:n] | (self.tenant[:n] == tcode)
            if not include_inactive:
                m &= self.active[:n]
            if today is not None:
                m &= self.expires[:n] >= today.toordinal()
            if kinds:
                codes = [KIND_CODES[k] for k in kinds if k in KIND_CODES]
                m &= np.isin(self.kind[:n], codes)
            if industries:
                tagged = np.zeros(n, dtype=bool)
                for t in industries:
                    pos = self._tag_pos.get(t)
                    if pos:
                        tagged[np.fromiter(pos, dtype=np.int64, count=len(pos))] = True
                m &= tagged
            if regions:
                codes = [self._regions[r] for r in (region_key(x) for x in regions) if r in self._regions]
                m &= np.isin(self.region[:n], codes)
            if stage is not None and stage in STAGE_BITS:
                bits = self.stage_bits[:n]
                is_fund = self.kind[:n] == KIND_CODES["fund"]
                m &= ~is_fund | (bits == 0) | ((bits & STAGE_BITS[stage]) != 0)
            if amount is not None:
                is_fund = self.kind[:n] == KIND_CODES["fund"]
                tmin, tmax = self.tmin[:n], self.tmax[:n]
                ok = (np.isnan(tmin) | (tmin <= amount)) & (np.isnan(tmax) | (tmax >= amount))
                m &= ~is_fund | ok
            if trl_min is not None or trl_max is not None:
                is_result = self.kind[:n] == KIND_CODES["result"]
                trl = self.trl[:n]
                ok = trl == 0
                lo = trl_min or 1
                hi = trl_max or 9
                ok |= (trl >= lo) & (trl <= hi)
                m &= ~is_result | ok
            if sought_kind is not None:
                bits = self.sought_bits[:n]
                m &= (bits == 0) | ((bits & (1 << KIND_CODES[sought_kind])) != 0)
            for i in exclude:
                pos = self._pos.get(i)
                if pos is not None:
                    m[pos] = False
            return m

    def allowed_ids(self, mask: np.ndarray) -> np.ndarray | None:
        """The ids passing a mask, or None when every live record passes (no restriction needed)."""
        with self._lock:
            n = self._n
            if int(mask.sum()) == int(self.alive[:n].sum()):
                return None
            return self.ids[:n][mask].copy()

    def all_ids(self) -> np.ndarray:
        with self._lock:
            return self.ids[: self._n][self.alive[: self._n]].copy()
