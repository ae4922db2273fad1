"""The filter catalog: hard filters as one consistent read, and the demand side's fund and `since` filters."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np

from matcher.indexing.catalog import Catalog, Filter, Meta
from matcher.indexing.indexer import Side
from matcher.matching.retrieval import retrieve


def meta(i: int, kind: str = "result", **over) -> Meta:
    fields = dict(
        id=i,
        kind=kind,
        tenant="park",
        public=True,
        active=True,
        title=f"r{i}",
        industries=frozenset(),
        own_industries=(),
        region=None,
        expires=None,
    )
    fields.update(over)
    return Meta(**fields)


def test_allowed_is_one_snapshot_while_writers_grow_and_shrink_the_catalog():
    cat = Catalog(capacity=4)  # small: the writers make it grow (reallocate its columns) many times
    cat.upsert(meta(i, "fund" if i % 2 else "result") for i in range(4))
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        i = 4
        try:
            while not stop.is_set() and i < 20_000:
                cat.upsert([meta(i, "fund" if i % 2 else "result")])
                cat.remove([i - 3])
                i += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(3000):
            ids = cat.allowed(Filter(tenant="park", kinds=("fund",)))
            # only funds, never a tombstone: the mask and the ids it selects are of the same state
            assert ids is not None and (ids >= 0).all() and (ids % 2 == 1).all()
    finally:
        stop.set()
        t.join()
    assert not errors


def test_candidates_carry_the_row_read_once_and_a_record_removed_during_retrieval_drops():
    cat = Catalog()
    cat.upsert([meta(1), meta(2)])

    class Pair:
        encoder = SimpleNamespace(model_id="m", dimension=2)

        def upper_bound(self, terms):
            return 1.0

        def lexical_search(self, terms, n, allowed, *, upper):
            cat.remove([2])  # a delete lands between the index search and the catalog read
            return [(1, 0.9), (2, 0.8)]

        def lexical_scores(self, terms, ids, *, upper):
            return {}

    got = retrieve(Side(Pair(), cat), "q", ["q"], None, 10, 0.0, feedback=None)
    assert [(c.id, c.meta.title) for c in got] == [(1, "r1")]


def test_since_filter_reads_the_update_column():
    cat = Catalog()
    cat.upsert([meta(1, updated=100.0), meta(2, updated=200.0), meta(3, updated=300.0)])
    assert cat.allowed(Filter(tenant="park", since=200.0)).tolist() == [2, 3]
    assert cat.allowed(Filter(tenant="park", since=None)) is None


def test_a_funds_stages_and_tickets_filter_the_demand_side():
    cat = Catalog()
    cat.upsert(
        [
            meta(10, "enterprise", stage="seed"),
            meta(11, "enterprise", stage="growth"),
            meta(12, "enterprise"),  # stage unknown: passes
            meta(20, "need", amount=5e6),
            meta(21, "need", amount=5e8),
            meta(22, "need"),  # amount unknown: passes
        ]
    )
    fund = meta(1, "fund", stages=("seed", "startup"), ticket_min=1e6, ticket_max=2e7)
    assert sorted(cat.allowed(Filter(tenant="park", fund=fund)).tolist()) == [10, 12, 20, 22]
    open_ended = meta(2, "fund", ticket_min=1e7)
    assert sorted(cat.allowed(Filter(tenant="park", fund=open_ended)).tolist()) == [10, 11, 12, 21, 22]


def test_visibility_expiry_and_exclusions():
    today = date(2030, 1, 1)
    cat = Catalog()
    cat.upsert(
        [
            meta(1),
            meta(2, tenant="other", public=False),
            meta(3, tenant="park", public=False),
            meta(4, expires=today - timedelta(days=1)),
            meta(5, active=False),
        ]
    )
    assert cat.allowed(Filter(tenant="park", today=today, exclude=frozenset({1}))).tolist() == [3]
    everything = cat.allowed(Filter(tenant="other", include_inactive=True))
    assert np.array_equal(np.sort(everything), [1, 2, 4, 5])
    assert cat.get_many([1, 99, 3]).keys() == {1, 3}
