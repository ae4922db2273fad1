"""The feed follower: a background thread that brings this process's indexes up to the store's change feed
(store/feed.py), so that a write made by another replica or by `matcher import` becomes searchable here.

It reads the entries after the seq it has applied, in batches, loads the records they name as the store holds
them now and hands them to the indexer (present: upsert; gone: remove), which re-embeds only what differs from
the index: applying an entry twice, or one this process already applied through its hub, is harmless and cheap.
It wakes on a PostgreSQL NOTIFY sent by the writing transaction, on a commit in this process, or every
`feed_poll_s` (SQLite, or a lost listening connection). A gap is never skipped silently: a hole in the seqs that
does not fill within `feed_gap_grace_s`, a log that ends before the applied seq, or one whose oldest entries
after the applied seq were pruned (`matcher feed prune`; at once, no grace), is logged in one line, counted, and
answered by a rebuild of the indexes from the store."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from matcher.domain.tables import Enterprise, Need, Resource
from matcher.indexing.indexer import Indexer
from matcher.settings import Settings
from matcher.store import feed

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedStatus:
    """Where this process stands on the feed: what it applied, the log's head, and how far behind it is."""

    applied: int
    head: int
    lag_seconds: float
    gaps: int

    @property
    def lag(self) -> int:
        return max(0, self.head - self.applied)


class FeedFollower:
    def __init__(self, indexer: Indexer, settings: Settings) -> None:
        self.indexer = indexer
        self.db = indexer.db
        self.settings = settings
        self._wake = threading.Event()
        self._applied = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._hole_since: float | None = None
        self._unwatch = feed.watch(self.db, lambda _seq: self._wake.set())

    @property
    def applied(self) -> int:
        return self.indexer.feed_seq

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """The following thread, and on PostgreSQL the thread that turns NOTIFYs into wake-ups."""
        self._threads = [threading.Thread(target=self._run, name="feed-follower", daemon=True)]
        if self.db.dialect.name == "postgresql":
            self._threads.append(threading.Thread(target=self._listen, name="feed-listener", daemon=True))
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._unwatch()
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                moved = self.step()
            except Exception:  # noqa: BLE001 - a store that is briefly unreachable: the next wake retries
                logger.exception("change feed follower failed; retrying")
                moved = 0
            if moved:  # more may follow in the next batch
                continue
            self._wake.wait(self.settings.feed_poll_s)
            self._wake.clear()

    def _listen(self) -> None:
        """LISTEN on a connection of its own; each notification wakes the follower. Lost: poll, reconnect."""
        import psycopg  # guarded: PostgreSQL stores only

        args, kwargs = self.db.dialect.create_connect_args(self.db.url)
        while not self._stop.is_set():
            try:
                with psycopg.connect(*args, **kwargs, autocommit=True) as conn:
                    conn.execute(f"LISTEN {feed.NOTIFY_CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            self._wake.set()
            except Exception as exc:  # noqa: BLE001 - polling carries on meanwhile
                logger.warning("change feed LISTEN connection lost (%s); polling until it is back", exc)
                self._stop.wait(self.settings.feed_poll_s * 5)

    # ------------------------------------------------------------------ following
    def step(self) -> int:
        """Apply one batch of entries after the applied seq; returns how many were applied (0: none ready)."""
        applied = self.applied
        with Session(self.db) as session:
            entries = feed.entries_after(session, applied, self.settings.feed_batch)
            if not entries:
                head = feed.bounds_in(session).head
                if head < applied:
                    self._rebuild(
                        f"the store's change feed ends at seq {head}, before the applied seq {applied}"
                    )
                return 0
            run = _contiguous(entries, applied)
            if not run:
                first = feed.bounds_in(session).first
                if first <= applied + 1:  # a hole inside the log: it may yet fill
                    return self._hole(entries[0].seq, applied)
            else:
                self._hole_since = None
                loaded = _load(session, run)
        if not run:  # the log starts above the applied seq: its older entries were pruned, none can come back
            self._hole_since = None
            self._rebuild(
                f"the change feed was pruned up to seq {first - 1}; this replica had applied seq {applied}"
            )
            return 1
        self.indexer.apply_feed(run[-1].seq, *loaded)
        self._notify()
        return len(run)

    def catch_up(self, timeout: float = 30.0) -> int:
        """Apply everything committed so far (tests, tools); returns the applied seq."""
        deadline = time.monotonic() + timeout
        while self.step() and time.monotonic() < deadline:
            pass
        return self.applied

    def _hole(self, next_seq: int, applied: int) -> int:
        """A jump from the applied seq: wait `feed_gap_grace_s` for it to fill, then call it a gap."""
        now = time.monotonic()
        if self._hole_since is None:
            self._hole_since = now
        if now - self._hole_since < self.settings.feed_gap_grace_s:
            return 0
        self._hole_since = None
        self._rebuild(f"seq {applied + 1} to {next_seq - 1} are missing from the change feed")
        return 1

    def _rebuild(self, reason: str) -> None:
        self.indexer.resync(reason)
        self._notify()

    def _notify(self) -> None:
        with self._applied:
            self._applied.notify_all()

    # ------------------------------------------------------------------ read-your-writes and readiness
    def wait_for(self, seq: int, timeout: float) -> bool:
        """Whether this process has applied `seq`, waiting up to `timeout` seconds for it."""
        if self.applied >= seq:
            return True
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._applied:
            while self.applied < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._applied.wait(min(left, 0.05))
        return True

    def status(self) -> FeedStatus:
        """Read fresh from the store: the head, and how old the oldest entry not yet applied is."""
        applied = self.applied
        with Session(self.db) as session:
            head = feed.bounds_in(session).head
            lag_s = 0.0
            if head > applied:
                oldest = session.exec(
                    select(feed.ChangeEntry.at)
                    .where(col(feed.ChangeEntry.seq) > applied)
                    .order_by(col(feed.ChangeEntry.seq))
                    .limit(1)
                ).first()
                if oldest is not None:
                    at = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
                    lag_s = max(0.0, (datetime.now(UTC) - at).total_seconds())
        return FeedStatus(applied=applied, head=head, lag_seconds=lag_s, gaps=self.indexer.feed_gaps)


def _contiguous(entries: list[feed.ChangeEntry], applied: int) -> list[feed.ChangeEntry]:
    """The entries that follow the applied seq without a hole."""
    run: list[feed.ChangeEntry] = []
    expected = applied + 1
    for entry in entries:
        if entry.seq != expected:
            break
        run.append(entry)
        expected += 1
    return run


def _load(
    session: Session, entries: list[feed.ChangeEntry]
) -> tuple[list[Resource], list[int], list[Need], list[Enterprise], tuple[list[int], list[int]]]:
    """The records the entries name as the store holds them now, and the ids it no longer holds."""
    ids: dict[str, set[int]] = defaultdict(set)
    for entry in entries:
        ids[entry.record_type].add(int(entry.record_id))
    resources = _rows(session, Resource, ids["resource"])
    needs = _rows(session, Need, ids["need"])
    enterprises = _rows(session, Enterprise, ids["enterprise"])

    def gone(rows: list, wanted: set[int]) -> list[int]:
        return sorted(wanted - {int(r.id) for r in rows})

    return (
        resources,
        gone(resources, ids["resource"]),
        needs,
        enterprises,
        (gone(needs, ids["need"]), gone(enterprises, ids["enterprise"])),
    )


def _rows(session: Session, model: type, ids: set[int]) -> list:
    if not ids:
        return []
    out: list = []
    ordered = sorted(ids)
    for start in range(0, len(ordered), 1000):  # bounded IN lists
        out += session.exec(select(model).where(col(model.id).in_(ordered[start : start + 1000]))).all()
    return out
