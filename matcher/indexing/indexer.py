"""The index lifecycle: load and reconcile both sides' indexes and catalogs with the store, keep them current
through change events, save them periodically, and switch encoders without stopping.

The store is the source of truth; indexes and catalogs are caches rebuilt or reconciled from it at start."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from embeddings.encoders.base import Encoder
from matcher.domain.tables import Enterprise, Need, Resource
from matcher.domain.taxonomy import Taxonomy
from matcher.indexing.catalog import Catalog
from matcher.indexing.demand_keys import DEMAND_ENTERPRISE, DEMAND_NEED, demand_key
from matcher.indexing.documents import demand_rows, resource_document
from matcher.indexing.metas import demand_metas, resource_meta, stamp
from matcher.indexing.pair import IndexPair
from matcher.indexing.snapshots import SnapshotInfo, SnapshotScheduler, seed_from_snapshot
from matcher.indexing.teacher_tier import TeacherStore
from matcher.settings import Settings
from matcher.store import feed
from matcher.store.schema import current

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Side:
    """One side of the market as a query reads it: an index pair and the catalog of the same records."""

    pair: IndexPair
    catalog: Catalog


class Indexer:
    """Owns the supply side (resources) and the demand side (open needs and enterprises); a ChangeListener."""

    def __init__(
        self,
        settings: Settings,
        db: Engine,
        taxonomy: Taxonomy,
        encoder: Encoder,
        *,
        teacher: Encoder | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.taxonomy = taxonomy
        # the teacher tier (teacher_tier.py): one store of teacher vectors per side, kept across encoder swaps
        self.teachers: dict[str, TeacherStore] = {}
        if teacher is not None:
            root = settings.data_dir / "teacher"
            for name in ("supply", "demand"):
                self.teachers[name] = TeacherStore(name, teacher, root, batch=settings.teacher_batch)
        self.supply = self._pair("supply", encoder)
        self.demand = self._pair("demand", encoder)
        self.resources = Catalog()
        self.demand_catalog = Catalog()
        self._write_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._dirty = 0
        self._saved_changes = 0  # changes written by earlier saves: with _dirty, every change since start
        self._saver: threading.Thread | None = None
        self._closing = threading.Event()
        # the change-feed seq up to which every entry is applied (set under _write_lock, saved with the indexes)
        self.feed_seq = 0
        self.feed_gaps = 0  # gaps found (log truncated, store older than the index, a hole that did not fill)
        self.seeded_from: SnapshotInfo | None = None  # the index snapshot this start copied in, if any
        self.snapshots: SnapshotScheduler | None = None  # writes shared snapshots while the indexes change

    def _pair(self, name: str, encoder: Encoder) -> IndexPair:
        return IndexPair(name, encoder, self.settings, teacher=self.teachers.get(name))

    def teacher_coverage(self) -> dict[str, dict[str, int | float]] | None:
        """Per side: records with a current teacher vector, records, share, records queued; None when off."""
        if not self.teachers:
            return None
        out: dict[str, dict[str, int | float]] = {}
        for name, store in self.teachers.items():
            have, total = store.coverage()
            out[name] = {
                "embedded": have,
                "records": total,
                "coverage": round(have / total, 4) if total else 1.0,
                "queued": store.pending,
            }
        return out

    def supply_side(self) -> Side:
        """The resources as one query reads them (the pair read once: a swap in flight never splits it)."""
        return Side(self.supply, self.resources)

    def demand_side(self) -> Side:
        return Side(self.demand, self.demand_catalog)

    @property
    def encoder(self) -> Encoder:
        """The encoder serving now: the one the index pairs were built with."""
        return self.supply.encoder

    @property
    def closing(self) -> threading.Event:
        """Set when the indexer closes: background helpers wait on it."""
        return self._closing

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, background_save_s: float = 30.0) -> None:
        """Load persisted indexes, reconcile them with the store, and start the periodic saver."""
        t0 = time.perf_counter()
        self._seed_from_snapshot()
        for store in self.teachers.values():
            store.load()
        self.supply.load_or_create()
        self.demand.load_or_create()
        bounds = feed.bounds(self.db)  # read before the records: whatever commits later is followed from here
        if (reason := self._start_gap(bounds)) is not None:
            self.gap(reason)
            self.supply._reset()
            self.demand._reset()
        n_res, stale_s, n_dem, stale_d = self._sync(self.supply, self.demand, catalogs=True)
        self.feed_seq = bounds.head
        for store in self.teachers.values():
            store.start()
        if stale_s or stale_d:
            self.save()
        elif self.feed_seq != self.supply.saved_feed_seq:
            self._dirty += 1  # the seq alone moved: the next periodic save (or the one at close) records it
        logger.info(
            "match engine ready: %d resources (%d re-indexed), %d demand records (%d re-indexed) in %.1fs",
            n_res,
            stale_s,
            n_dem,
            stale_d,
            time.perf_counter() - t0,
        )
        if self.settings.snapshot_dir is not None and self.settings.snapshot_every_s > 0:
            self.snapshots = SnapshotScheduler(
                self,
                self.settings.snapshot_dir,
                every_s=self.settings.snapshot_every_s,
                keep=self.settings.snapshot_keep,
                schema_revision=current(self.db) or "",
                seq=lambda: self.feed_seq,  # the feed position the indexes hold up to
            )
            self.snapshots.start()
        if background_save_s > 0:
            self._saver = threading.Thread(target=self._save_loop, args=(background_save_s,), daemon=True)
            self._saver.start()

    def _seed_from_snapshot(self) -> None:
        """A replica with no indexes of its own starts from the newest shared snapshot that fits (the reconcile
        that follows re-indexes what changed since); without a snapshot directory this does nothing."""
        root = self.settings.snapshot_dir
        if root is None:
            return
        self.seeded_from = seed_from_snapshot(
            self.settings.index_dir,
            root,
            model_id=self.encoder.model_id,
            dimension=self.encoder.dimension,
            schema_revision=current(self.db) or "",
        )

    def _sync(
        self,
        supply: IndexPair,
        demand: IndexPair,
        *,
        catalogs: bool = False,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> tuple[int, int, int, int]:
        """Make `supply` and `demand` hold exactly the store's records: drop what the store no longer has,
        (re)index what is new or changed since their stamps. Returns (resources, re-indexed, demand records,
        re-indexed). With `catalogs`, the filter catalogs are loaded from the same read."""
        with Session(self.db) as session:
            resources = list(session.exec(select(Resource)))
            needs = list(session.exec(select(Need)))
            enterprises = list(session.exec(select(Enterprise)))
        if catalogs:
            self.resources.upsert(resource_meta(r, self.taxonomy) for r in resources)
            self.demand_catalog.upsert(demand_metas(needs, enterprises, self.taxonomy))
        stale_s = supply.reconcile({r.id: stamp(r) for r in resources})
        stamps = {demand_key(DEMAND_NEED, n.id): stamp(n) for n in needs}
        stamps.update({demand_key(DEMAND_ENTERPRISE, e.id): stamp(e) for e in enterprises})
        stale_d = demand.reconcile(stamps)
        done = [0]

        def tick(n: int) -> None:
            done[0] += n
            if progress is not None:
                progress("index", done[0], len(stale_s) + len(stale_d))

        self._index_resources([r for r in resources if r.id in stale_s], pair=supply, progress=tick)
        self._index_demand(
            [n for n in needs if demand_key(DEMAND_NEED, n.id) in stale_d],
            [e for e in enterprises if demand_key(DEMAND_ENTERPRISE, e.id) in stale_d],
            pair=demand,
            progress=tick,
        )
        self._queue_teacher(supply, demand, resources, needs, enterprises, stamps, (stale_s, stale_d))
        return len(resources), len(stale_s), len(stamps), len(stale_d)

    def _queue_teacher(
        self,
        supply: IndexPair,
        demand: IndexPair,
        resources: Sequence[Resource],
        needs: Sequence[Need],
        enterprises: Sequence[Enterprise],
        demand_stamps: dict[int, float],
        indexed: tuple[set[int], set[int]],
    ) -> None:
        """The teacher tier holds exactly the store's records: vectors of others dropped, and the records it
        lacks (or holds at another stamp) queued, except those just indexed (the pair queued them)."""
        if supply.teacher is not None:
            want = supply.teacher.retain({r.id: stamp(r) for r in resources}) - set(indexed[0])
            rows = [r for r in resources if r.id in want]
            supply.teacher.submit(
                [r.id for r in rows],
                [resource_document(r, self.taxonomy) for r in rows],
                [stamp(r) for r in rows],
            )
        if demand.teacher is not None:
            want = demand.teacher.retain(demand_stamps) - set(indexed[1])
            keys, texts, dstamps = demand_rows(
                self.taxonomy,
                [n for n in needs if demand_key(DEMAND_NEED, n.id) in want],
                [e for e in enterprises if demand_key(DEMAND_ENTERPRISE, e.id) in want],
            )
            demand.teacher.submit(keys, texts, dstamps)

    def _start_gap(self, bounds: feed.FeedBounds) -> str | None:
        """Why the saved indexes cannot be trusted to resume the feed, if they cannot: the store is older than
        they are (restored from a copy), or its log no longer holds the entries after their seq."""
        seqs = [p.saved_feed_seq for p in (self.supply, self.demand)]
        if any(s is None for s in seqs):
            return None  # saved before the feed existed: the reconcile by stamps below is the whole catch-up
        saved = min(s for s in seqs if s is not None)
        if saved > bounds.head:
            return f"the store's change feed ends at seq {bounds.head}, before the saved indexes' seq {saved}"
        if bounds.first > saved + 1:
            return f"the change feed starts at seq {bounds.first}; the saved indexes stopped at seq {saved}"
        return None

    def gap(self, reason: str) -> None:
        """Say a gap in one line (and count it); the caller rebuilds from the store."""
        self.feed_gaps += 1
        logger.warning("change feed gap: %s; rebuilding the indexes from the store", reason)

    def resync(self, reason: str) -> int:
        """After a gap: every record read again, the catalogs replaced, every record whose stamp differs from
        the index's re-embedded and every one the store lacks dropped, with writes held; returns the feed seq
        the indexes now stand at (read before the records, so nothing committed meanwhile is skipped)."""
        self.gap(reason)
        head = feed.head(self.db)
        with Session(self.db) as session:
            resources = list(session.exec(select(Resource)))
            needs = list(session.exec(select(Need)))
            enterprises = list(session.exec(select(Enterprise)))
        catalog, demand_catalog = Catalog(), Catalog()
        catalog.upsert(resource_meta(r, self.taxonomy) for r in resources)
        demand_catalog.upsert(demand_metas(needs, enterprises, self.taxonomy))
        with self._write_lock:
            stale_s = self.supply.reconcile({r.id: stamp(r) for r in resources})
            stamps = {demand_key(DEMAND_NEED, n.id): stamp(n) for n in needs}
            stamps.update({demand_key(DEMAND_ENTERPRISE, e.id): stamp(e) for e in enterprises})
            stale_d = self.demand.reconcile(stamps)
            self._index_resources([r for r in resources if r.id in stale_s])
            self._index_demand(
                [n for n in needs if demand_key(DEMAND_NEED, n.id) in stale_d],
                [e for e in enterprises if demand_key(DEMAND_ENTERPRISE, e.id) in stale_d],
            )
            self._queue_teacher(
                self.supply, self.demand, resources, needs, enterprises, stamps, (stale_s, stale_d)
            )
            self.resources, self.demand_catalog = catalog, demand_catalog
            self.feed_seq = head
            self._dirty += 1
        logger.info("indexes rebuilt from the store at feed seq %d (%d records re-indexed)", head,
                    len(stale_s) + len(stale_d))  # fmt: skip
        return head

    def held(self) -> tuple[int, dict[int, float], dict[int, float]]:
        """The feed seq and both sides' stamps at one moment (no feed batch half applied): what `digest` reads."""
        with self._write_lock:
            return self.feed_seq, self.supply.snapshot_stamps(), self.demand.snapshot_stamps()

    def apply_feed(
        self,
        seq: int,
        resources: Sequence[Resource],
        resources_gone: Sequence[int],
        needs: Sequence[Need],
        enterprises: Sequence[Enterprise],
        demand_gone: tuple[Sequence[int], Sequence[int]],
    ) -> int:
        """Apply what the feed named, as the store holds it now, and stand at `seq`. Catalogs take every row
        (cheap); only a record whose stamp differs from the index's is embedded again, so an entry this
        process already applied through its hub costs no encoding. Returns the records re-embedded."""
        with self._write_lock:
            fresh_r = [r for r in resources if self.supply.stamps.get(int(r.id)) != stamp(r)]
            fresh_n = [n for n in needs if self.demand.stamps.get(demand_key(DEMAND_NEED, n.id)) != stamp(n)]
            fresh_e = [
                e
                for e in enterprises
                if self.demand.stamps.get(demand_key(DEMAND_ENTERPRISE, e.id)) != stamp(e)
            ]
            self.resources.upsert(resource_meta(r, self.taxonomy) for r in resources)
            self.demand_catalog.upsert(demand_metas(needs, enterprises, self.taxonomy))
            self._index_resources(fresh_r)
            self._index_demand(fresh_n, fresh_e)
            if resources_gone:
                self.resources.remove(resources_gone)
                self.supply.remove(list(resources_gone))
            keys = [demand_key(DEMAND_NEED, i) for i in demand_gone[0]]
            keys += [demand_key(DEMAND_ENTERPRISE, i) for i in demand_gone[1]]
            if keys:
                self.demand_catalog.remove(keys)
                self.demand.remove(keys)
            changed = len(fresh_r) + len(fresh_n) + len(fresh_e) + len(resources_gone) + len(keys)
            self._dirty += changed
            self.feed_seq = max(self.feed_seq, seq)
            return len(fresh_r) + len(fresh_n) + len(fresh_e)

    def swap_encoder(self, encoder: Encoder) -> dict[str, str | int | float]:
        """Serve `encoder` without stopping: both indexes are rebuilt with it from the store while the current
        ones keep answering, what changed meanwhile is caught up with writes held, then encoder and indexes
        switch together (a request reads one index pair, and each pair encodes queries with its own encoder)."""
        with self._swap_lock:
            t0 = time.perf_counter()
            supply = self._pair("supply", encoder)
            demand = self._pair("demand", encoder)
            n_res, _, n_dem, _ = self._sync(supply, demand)
            with self._write_lock:
                _, caught_s, _, caught_d = self._sync(supply, demand)
                old = self.encoder.model_id
                self.supply, self.demand = supply, demand
                self._dirty += 1
            self.save()
            out: dict[str, str | int | float] = {
                "from": old,
                "to": encoder.model_id,
                "resources": n_res,
                "demand_records": n_dem,
                "caught_up": caught_s + caught_d,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            logger.info("encoder switched: %s", out)
            return out

    def rebuild(self, progress: Callable[[str, int, int], None] | None = None) -> dict[str, int | float]:
        """Build both indexes afresh from the store with the current encoder, whatever was saved, and save them
        (`matcher reindex`); the catalogs are loaded from the same read. ``progress(stage, done, total)``."""
        t0 = time.perf_counter()
        supply = self._pair("supply", self.encoder)
        demand = self._pair("demand", self.encoder)
        n_res, _, n_dem, _ = self._sync(supply, demand, catalogs=True, progress=progress)
        with self._write_lock:
            self.supply, self.demand = supply, demand
            self._dirty += 1
        self.save()
        return {"resources": n_res, "demand_records": n_dem, "seconds": round(time.perf_counter() - t0, 1)}

    def _save_loop(self, every: float) -> None:
        while not self._closing.wait(every):
            if self._dirty:
                try:
                    self.save()
                except Exception:  # noqa: BLE001 - the next save or the start-up reconcile repairs it
                    logger.exception("periodic index save failed")

    @property
    def changes(self) -> int:
        """How many record changes the indexes took since start (index snapshots compare it)."""
        return self._saved_changes + self._dirty

    def save(self) -> None:
        with self._save_lock:  # one save at a time: the periodic one never interleaves with a swap's
            with self._write_lock:
                self._saved_changes += self._dirty
                self._dirty = 0
                supply, demand = self.supply, self.demand
                supply_snapshot = supply.snapshot_stamps()
                demand_snapshot = demand.snapshot_stamps()
                feed_seq = self.feed_seq
            supply.save(supply_snapshot, feed_seq=feed_seq)
            demand.save(demand_snapshot, feed_seq=feed_seq)
            for store in self.teachers.values():
                store.save()

    def save_to(self, root: Path) -> dict[str, int]:
        """Write both sides' indexes under ``root`` in the index directory's layout (an index snapshot), their
        stamps taken first; returns how many records each side holds. The periodic save is not disturbed."""
        with self._save_lock:
            with self._write_lock:
                supply, demand = self.supply, self.demand
                supply_stamps = supply.snapshot_stamps()
                demand_stamps = demand.snapshot_stamps()
                feed_seq = self.feed_seq
            supply.save(supply_stamps, root / "supply", feed_seq=feed_seq)
            demand.save(demand_stamps, root / "demand", feed_seq=feed_seq)
        return {"supply": len(supply_stamps), "demand": len(demand_stamps)}

    def close(self) -> None:
        self._closing.set()
        if self._saver is not None:
            self._saver.join(timeout=5)
        for store in self.teachers.values():
            store.close()
        try:
            self.save()
        except Exception:  # noqa: BLE001
            logger.exception("index save at shutdown failed; the next start reconciles from the store")

    # ------------------------------------------------------------------ indexing
    def _index_resources(
        self,
        rows: Sequence[Resource],
        *,
        pair: IndexPair | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        if not rows:
            return
        (pair or self.supply).upsert(
            [r.id for r in rows],
            [resource_document(r, self.taxonomy) for r in rows],
            [stamp(r) for r in rows],
            progress=progress,
        )

    def _index_demand(
        self,
        needs: Sequence[Need],
        enterprises: Sequence[Enterprise],
        *,
        pair: IndexPair | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        keys, texts, stamps = demand_rows(self.taxonomy, needs, enterprises)
        if keys:
            (pair or self.demand).upsert(keys, texts, stamps, progress=progress)

    # ------------------------------------------------------------------ change events (ChangeListener)
    def resources_changed(self, resources: Sequence[Resource]) -> None:
        with self._write_lock:
            # the feed may have applied a later version of a row already: an older one never replaces it
            resources = [r for r in resources if self.supply.stamps.get(int(r.id), 0.0) <= stamp(r)]
            self.resources.upsert(resource_meta(r, self.taxonomy) for r in resources)
            self._index_resources(resources)
            self._dirty += len(resources)

    def resources_removed(self, ids: Sequence[int]) -> None:
        with self._write_lock:
            self.resources.remove(ids)
            self.supply.remove(list(ids))
            self._dirty += len(ids)

    def demand_changed(self, needs: Sequence[Need], enterprises: Sequence[Enterprise]) -> None:
        with self._write_lock:
            held = self.demand.stamps
            needs = [n for n in needs if held.get(demand_key(DEMAND_NEED, n.id), 0.0) <= stamp(n)]
            enterprises = [
                e for e in enterprises if held.get(demand_key(DEMAND_ENTERPRISE, e.id), 0.0) <= stamp(e)
            ]
            self.demand_catalog.upsert(demand_metas(needs, enterprises, self.taxonomy))
            self._index_demand(needs, enterprises)
            self._dirty += len(needs) + len(enterprises)

    def demand_removed(self, need_ids: Sequence[int], enterprise_ids: Sequence[int]) -> None:
        keys = [demand_key(DEMAND_NEED, i) for i in need_ids] + [
            demand_key(DEMAND_ENTERPRISE, i) for i in enterprise_ids
        ]
        with self._write_lock:
            self.demand_catalog.remove(keys)
            self.demand.remove(keys)
            self._dirty += len(keys)
