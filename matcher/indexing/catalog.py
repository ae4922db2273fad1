"""In-memory columns of what the hard filters test, so filtering 100k records is a few numpy ops.

One `Catalog` holds the resources (supply side), another the open needs and enterprises (demand side).
Rows are kept as small frozen dataclasses for fit and explanations; columns are numpy arrays indexed by
position, grown by doubling, with a tombstone flag for removed records. Every read is one call under the
catalog's lock, so a reader sees one state of it however writers interleave."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from matcher.domain.regions import default_regions, region_key

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


@dataclass(frozen=True)
class Filter:
    """The hard filters of one query. Unknown values pass (a fund without a ticket range is not excluded by the
    amount); fit and the explanation mark them 'unknown'."""

    tenant: str
    kinds: tuple[str, ...] = ()  # empty: every kind
    today: date | None = None
    industries: frozenset[str] = frozenset()  # any of these (taxonomy-expanded); empty: no restriction
    regions: tuple[str, ...] = ()
    include_inactive: bool = False
    stage: str | None = None  # funds whose stages exclude it drop
    amount: float | None = None  # funds whose ticket range excludes it drop
    trl_min: int | None = None
    trl_max: int | None = None
    sought_kind: str | None = None  # demand side: needs that seek other kinds drop
    fund: Meta | None = None  # demand side: a fund's stages and ticket range filter enterprises and needs
    since: float | None = None  # unix seconds: records updated before drop
    exclude: frozenset[int] = frozenset()


class Catalog:
    def __init__(self, capacity: int = 1024) -> None:
        self._lock = threading.RLock()
        self._rows: dict[int, Meta] = {}
        self._pos: dict[int, int] = {}
        self._n = 0
        self._tenants: dict[str, int] = {}
        self._regions: dict[str, int] = {}
        self._stages: dict[str, int] = {}
        self._tag_pos: dict[str, set[int]] = {}
        self._alloc(capacity)

    # ------------------------------------------------------------ storage
    def _alloc(self, capacity: int) -> None:
        def grow(name: str, dtype: type[np.generic], fill: float) -> None:
            old = getattr(self, name, None)
            arr = np.full(capacity, fill, dtype=dtype)
            if old is not None:
                arr[: len(old)] = old
            setattr(self, name, arr)

        grow("_ids", np.int64, -1)
        grow("_alive", np.bool_, False)
        grow("_kind", np.int8, 0)
        grow("_tenant", np.int32, -1)
        grow("_public", np.bool_, False)
        grow("_active", np.bool_, False)
        grow("_expires", np.int32, NO_EXPIRY)
        grow("_region", np.int32, -1)
        grow("_trl", np.int8, 0)
        grow("_tmin", np.float64, np.nan)
        grow("_tmax", np.float64, np.nan)
        grow("_amount", np.float64, np.nan)
        grow("_stage", np.int32, -1)
        grow("_stage_bits", np.int8, 0)
        grow("_sought_bits", np.int8, 0)
        grow("_updated", np.float64, 0.0)
        self._cap = capacity

    @staticmethod
    def _intern(table: dict[str, int], value: str | None) -> int:
        if value is None:
            return -1
        code = table.get(value)
        if code is None:
            code = table[value] = len(table)
        return code

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

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
                    old = self._rows[m.id]
                    for t in old.industries:
                        self._tag_pos.get(t, set()).discard(pos)
                self._rows[m.id] = m
                self._ids[pos] = m.id
                self._alive[pos] = True
                self._kind[pos] = KIND_CODES.get(m.kind, 0)
                self._tenant[pos] = self._intern(self._tenants, m.tenant)
                self._public[pos] = m.public
                self._active[pos] = m.active
                self._expires[pos] = m.expires.toordinal() if m.expires else NO_EXPIRY
                self._region[pos] = self._intern(self._regions, region_key(m.region))
                self._trl[pos] = m.trl or 0
                self._tmin[pos] = np.nan if m.ticket_min is None else m.ticket_min
                self._tmax[pos] = np.nan if m.ticket_max is None else m.ticket_max
                self._amount[pos] = np.nan if m.amount is None else m.amount
                self._stage[pos] = self._intern(self._stages, m.stage or None)
                self._stage_bits[pos] = sum(STAGE_BITS.get(s, 0) for s in m.stages) or (
                    STAGE_BITS.get(m.stage or "", 0)
                )
                self._sought_bits[pos] = (
                    sum(1 << KIND_CODES[k] for k in m.kinds_sought if k in KIND_CODES) & 0x7F
                )
                self._updated[pos] = m.updated
                for t in m.industries:
                    self._tag_pos.setdefault(t, set()).add(pos)

    def remove(self, ids: Iterable[int]) -> None:
        with self._lock:
            for i in ids:
                pos = self._pos.pop(i, None)
                if pos is None:
                    continue
                m = self._rows.pop(i)
                for t in m.industries:
                    self._tag_pos.get(t, set()).discard(pos)
                self._alive[pos] = False
                self._ids[pos] = -1

    # ------------------------------------------------------------ reads
    def get(self, i: int) -> Meta | None:
        with self._lock:
            return self._rows.get(i)

    def get_many(self, ids: Iterable[int]) -> dict[int, Meta]:
        """The rows of those ids still present, read at one instant."""
        with self._lock:
            return {i: m for i in ids if (m := self._rows.get(i)) is not None}

    def allowed(self, f: Filter) -> np.ndarray | None:
        """The ids passing every hard filter, or None when every live record passes (no restriction needed).

        Mask and ids come from one state of the catalog: a record added or removed meanwhile is either wholly
        in or wholly out."""
        with self._lock:
            n = self._n
            mask = self._mask_locked(f, n)
            if int(mask.sum()) == int(self._alive[:n].sum()):
                return None
            return self._ids[:n][mask].copy()

    def _mask_locked(self, f: Filter, n: int) -> np.ndarray:
        m = self._alive[:n].copy()
        kind = self._kind[:n]
        m &= self._public[:n] | (self._tenant[:n] == self._tenants.get(f.tenant, -2))
        if not f.include_inactive:
            m &= self._active[:n]
        if f.today is not None:
            m &= self._expires[:n] >= f.today.toordinal()
        if f.kinds:
            m &= np.isin(kind, [KIND_CODES[k] for k in f.kinds if k in KIND_CODES])
        if f.industries:
            tagged = np.zeros(n, dtype=bool)
            for t in f.industries:
                pos = self._tag_pos.get(t)
                if pos:
                    tagged[np.fromiter(pos, dtype=np.int64, count=len(pos))] = True
            m &= tagged
        if f.regions:
            # the wanted regions and the places inside them (北京 -> 海淀区, 海淀园 ...), in either language;
            # a nationwide record serves every region
            wanted = [k for k in (region_key(x) for x in f.regions) if k is not None]
            regions = default_regions()
            codes = [code for key, code in self._regions.items() if regions.passes(key, wanted)]
            m &= np.isin(self._region[:n], codes)
        is_fund = kind == KIND_CODES["fund"]
        if f.stage is not None and f.stage in STAGE_BITS:
            bits = self._stage_bits[:n]
            m &= ~is_fund | (bits == 0) | ((bits & STAGE_BITS[f.stage]) != 0)
        if f.amount is not None:
            m &= ~is_fund | _within(f.amount, self._tmin[:n], self._tmax[:n])
        if f.trl_min is not None or f.trl_max is not None:
            trl = self._trl[:n]
            ok = (trl == 0) | ((trl >= (f.trl_min or 1)) & (trl <= (f.trl_max or 9)))
            m &= (kind != KIND_CODES["result"]) | ok
        if f.sought_kind is not None:
            bits = self._sought_bits[:n]
            m &= (bits == 0) | ((bits & (1 << KIND_CODES[f.sought_kind])) != 0)
        if f.fund is not None:
            m &= self._fund_fit_locked(f.fund, n)
        if f.since is not None:
            m &= self._updated[:n] >= f.since
        for i in f.exclude:
            pos = self._pos.get(i)
            if pos is not None:
                m[pos] = False
        return m

    def _fund_fit_locked(self, fund: Meta, n: int) -> np.ndarray:
        """Demand records a fund can serve: enterprises at one of its stages, needs within its ticket range."""
        kind = self._kind[:n]
        ok = np.ones(n, dtype=bool)
        if fund.stages:
            stage = self._stage[:n]
            codes = [self._stages[s] for s in fund.stages if s in self._stages]
            ok &= (kind != KIND_CODES["enterprise"]) | (stage == -1) | np.isin(stage, codes)
        amount = self._amount[:n]
        lo = np.nan if fund.ticket_min is None else fund.ticket_min
        hi = np.nan if fund.ticket_max is None else fund.ticket_max
        fits = np.isnan(amount) | ((np.isnan(lo) | (amount >= lo)) & (np.isnan(hi) | (amount <= hi)))
        return ok & ((kind != KIND_CODES["need"]) | fits)


def _within(amount: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Ranges [lo, hi] holding `amount`; a missing bound (NaN) passes."""
    return (np.isnan(lo) | (lo <= amount)) & (np.isnan(hi) | (hi >= amount))
