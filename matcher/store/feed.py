"""The change feed: an ordered log of every committed write of an indexed record (enterprise, need, resource),
appended in the writing transaction, so that every process serving the store (replicas, a server beside a
`matcher import`) can bring its indexes up to date by reading it.

Why in the store and not in the process: the in-process hub (events.py) only reaches listeners in the process
that wrote. The log is written by session hooks, so no write path can forget it: ORM units of work (API, UI,
imports, the CLI) and Core DML run through a session (bulk `insert(Resource)`, `delete(Need).where(...)`) alike.

Sequence numbers are gapless and follow commit order: the append runs at the end of the transaction
(`before_commit`), takes a transaction-level advisory lock on PostgreSQL (SQLite serialises writers anyway) and
uses max(seq)+1, so a transaction that numbered its entries commits before the next one can number its own, and a
rolled-back transaction leaves no hole. On PostgreSQL the same transaction sends a NOTIFY, delivered at commit,
that wakes the followers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BigInteger, Column, Index, Integer, event, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, SessionTransaction
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, Session, SQLModel

from matcher.domain.tables import Enterprise, Need, Resource, utcnow

RecordType = Literal["enterprise", "need", "resource"]
Op = Literal["upsert", "delete"]

NOTIFY_CHANNEL = "parkmatch_feed"
# pg_advisory_xact_lock key of the append (any constant: "pmfeed" in ASCII); held from the append to the commit
ADVISORY_KEY = 0x706D66656564

_MODELS: dict[str, type[Enterprise] | type[Need] | type[Resource]] = {
    "enterprise": Enterprise,
    "need": Need,
    "resource": Resource,
}
_TYPE_OF_TABLE = {model.__tablename__: name for name, model in _MODELS.items()}

_PENDING = "parkmatch.feed_pending"  # session.info: {(record_type, id): (tenant, op)} not yet appended
LAST_SEQ = "parkmatch.feed_seq"  # session.info: the last seq this session appended (kept across commits)


class ChangeEntry(SQLModel, table=True):
    """One committed write of one indexed record. `op` says what the write did; a follower reads the record's
    current row anyway (present: index it; absent: drop it), so replaying an entry twice is harmless."""

    __tablename__ = "change_log"
    # a record's last write (record_seqs): the seq a read of the record reports
    __table_args__ = (Index("ix_change_log_record", "record_type", "record_id"),)

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    tenant_id: str | None = Field(default=None, max_length=64)
    record_type: str = Field(max_length=16)
    record_id: int = Field(sa_column=Column(Integer, nullable=False))
    op: str = Field(max_length=8)
    at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True)
class FeedBounds:
    """The log as one read saw it: the first and last seq held (0 when empty) and the time of the last one."""

    first: int
    head: int
    head_at: datetime | None


# ---------------------------------------------------------------- reading


def bounds(db: Engine) -> FeedBounds:
    """The seqs the log holds now (one indexed read each end)."""
    with Session(db) as session:
        return bounds_in(session)


def bounds_in(session: Session) -> FeedBounds:
    first = session.execute(select(func.min(ChangeEntry.seq))).scalar() or 0
    last = session.execute(
        select(ChangeEntry.seq, ChangeEntry.at).order_by(ChangeEntry.seq.desc()).limit(1)
    ).first()  # type: ignore[attr-defined]
    if last is None:
        return FeedBounds(first=0, head=0, head_at=None)
    return FeedBounds(first=int(first), head=int(last[0]), head_at=last[1])


def head(db: Engine) -> int:
    with Session(db) as session:
        return int(session.execute(select(func.max(ChangeEntry.seq))).scalar() or 0)


def entries_after(session: Session, seq: int, limit: int) -> list[ChangeEntry]:
    stmt = select(ChangeEntry).where(ChangeEntry.seq > seq).order_by(ChangeEntry.seq).limit(limit)  # type: ignore[arg-type, attr-defined]
    return list(session.execute(stmt).scalars())


def count(db: Engine) -> int:
    """How many entries the log holds."""
    with Session(db) as session:
        return int(session.execute(select(func.count()).select_from(ChangeEntry)).scalar() or 0)


@dataclass(frozen=True)
class Pruned:
    """What `prune` deleted: `deleted` entries, seqs up to `through` (0: none); the log then holds seq `first`
    to `head`."""

    deleted: int
    through: int
    first: int
    head: int


def prune(db: Engine, keep: int, floor: int | None = None) -> Pruned:
    """Delete the entries older than the newest `keep`, and never one above `floor` (the lowest seq every
    replica that still follows the log has applied). At least the head entry always stays: the next write is
    numbered max(seq)+1, so an empty log would number from 1 again.

    A replica that had applied less than what is deleted finds the log starting above its seq: the follower
    (and the start-up check) take that as a gap and rebuild from the store."""
    if keep < 1:
        raise ValueError("keep must be at least 1: the newest entry numbers the next write")
    with Session(db) as session:
        held = bounds_in(session)
        through = held.head - keep
        if floor is not None:
            through = min(through, floor)
        if held.head == 0 or through < held.first:
            return Pruned(deleted=0, through=0, first=held.first, head=held.head)
        result = session.execute(
            ChangeEntry.__table__.delete().where(ChangeEntry.__table__.c.seq <= through)  # type: ignore[attr-defined]
        )
        session.commit()
        deleted = int(result.rowcount or 0)
        first = int(session.execute(select(func.min(ChangeEntry.seq))).scalar() or 0)
    return Pruned(deleted=deleted, through=through, first=first, head=held.head)


def written_seq(session: Session) -> int:
    """The seq of this session's last committed write; when it appended nothing (a write that changed nothing),
    the log's head, which a read-after-write may wait for just as well."""
    seq = session.info.get(LAST_SEQ)
    if seq is None:
        seq = session.info[LAST_SEQ] = int(session.execute(select(func.max(ChangeEntry.seq))).scalar() or 0)
    return int(seq)


def record_seqs(session: Session, record_type: str, ids: Sequence[int]) -> dict[int, int]:
    """The seq of each record's last write (records written before the feed existed, or whose entries were
    pruned, are left out)."""
    if not ids:
        return {}
    stmt = (
        select(ChangeEntry.record_id, func.max(ChangeEntry.seq))
        .where(ChangeEntry.record_type == record_type, ChangeEntry.record_id.in_(list(ids)))  # type: ignore[attr-defined]
        .group_by(ChangeEntry.record_id)
    )
    return {int(rid): int(seq) for rid, seq in session.execute(stmt)}


def append_now(session: OrmSession) -> int | None:
    """Number this transaction's writes now rather than at commit, when a response stored before the commit
    (an idempotent create's) must say its seq; the lock is then held from here to the commit. Returns the last
    seq this session appended (None: it wrote no indexed record)."""
    _before_commit(session)
    return session.info.get(LAST_SEQ)


# ---------------------------------------------------------------- after-commit watchers (the local fast path)

_watchers: list[tuple[Engine, Callable[[int], None]]] = []
_watchers_lock = threading.Lock()


def watch(db: Engine, callback: Callable[[int], None]) -> Callable[[], None]:
    """Call `callback(seq)` after each commit through `db` that appended entries (this process's writes wake its
    follower at once instead of at the next poll). Returns the function that stops watching."""
    item = (db, callback)
    with _watchers_lock:
        _watchers.append(item)

    def stop() -> None:
        with _watchers_lock:
            if item in _watchers:
                _watchers.remove(item)

    return stop


def _engine_of(session: OrmSession) -> Engine | None:
    try:
        bind = session.get_bind()
    except Exception:  # noqa: BLE001 - a session without one bind: no watcher can be told
        return None
    return bind if isinstance(bind, Engine) else getattr(bind, "engine", None)


# ---------------------------------------------------------------- the hooks that collect and append


def _remember(session: OrmSession, record_type: str, rows: Iterable[tuple[int, str | None]], op: Op) -> None:
    pending: dict[tuple[str, int], tuple[str | None, Op]] = session.info.setdefault(_PENDING, {})
    for record_id, tenant in rows:
        key = (record_type, int(record_id))
        pending.pop(key, None)  # a later write of the same record moves it to the end
        pending[key] = (tenant, op)


def _after_flush(session: OrmSession, _context: Any) -> None:
    """Collect the indexed rows this flush wrote (the lists still hold their pre-flush state here)."""
    for obj in session.new:
        if (name := _TYPE_OF_TABLE.get(getattr(obj, "__tablename__", ""))) is not None:
            _remember(session, name, [(obj.id, obj.tenant_id)], "upsert")
    for obj in session.dirty:
        name = _TYPE_OF_TABLE.get(getattr(obj, "__tablename__", ""))
        if name is not None and session.is_modified(obj, include_collections=False):
            _remember(session, name, [(obj.id, obj.tenant_id)], "upsert")
    for obj in session.deleted:
        if (name := _TYPE_OF_TABLE.get(getattr(obj, "__tablename__", ""))) is not None:
            _remember(session, name, [(obj.id, obj.tenant_id)], "delete")


def _on_execute(state: ORMExecuteState) -> Any:
    """Core DML on an indexed table run through a session: the rows it touches join the pending entries
    (ids read before an UPDATE or DELETE, and the ids above the previous maximum after an INSERT)."""
    if state.is_select or not (state.is_insert or state.is_update or state.is_delete):
        return None
    table = getattr(state.statement, "table", None)
    name = _TYPE_OF_TABLE.get(getattr(table, "name", ""))
    if name is None:
        return None
    model = _MODELS[name]
    session = state.session
    ids = select(model.id, model.tenant_id)  # type: ignore[call-overload]
    if state.is_insert:
        before = session.execute(select(func.max(model.id))).scalar() or 0
        result = state.invoke_statement()
        _remember(session, name, session.execute(ids.where(model.id > before)).all(), "upsert")
        return result
    where = getattr(state.statement, "whereclause", None)
    touched = session.execute(ids.where(where) if where is not None else ids).all()
    _remember(session, name, touched, "delete" if state.is_delete else "upsert")
    return state.invoke_statement()


def _before_commit(session: OrmSession) -> None:
    """Append the transaction's entries as its last statements, so that the lock is held only to the commit."""
    if session.new or session.dirty or session.deleted:
        session.flush()  # rows still unflushed join the pending entries through _after_flush
    pending = session.info.pop(_PENDING, {})
    if pending:
        session.info[LAST_SEQ] = append(
            session, [(t, i, tenant, op) for (t, i), (tenant, op) in pending.items()]
        )
        session.info["parkmatch.feed_notify"] = True


def append(session: OrmSession, entries: Sequence[tuple[str, int, str | None, str]]) -> int:
    """Number and insert (record_type, record_id, tenant, op) entries in this transaction; returns the last seq.

    On PostgreSQL the advisory lock, held until this transaction ends, makes max(seq)+1 safe against other
    writers (each of them waits here until this one commits or rolls back, then reads the new maximum)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_KEY})
    last = int(session.execute(select(func.max(ChangeEntry.seq))).scalar() or 0)
    now = utcnow()
    rows = [
        {"seq": last + n, "tenant_id": tenant, "record_type": rtype, "record_id": rid, "op": op, "at": now}
        for n, (rtype, rid, tenant, op) in enumerate(entries, start=1)
    ]
    session.execute(ChangeEntry.__table__.insert(), rows)  # type: ignore[attr-defined]
    last += len(rows)
    if postgres:
        session.execute(
            text("SELECT pg_notify(:channel, :seq)"), {"channel": NOTIFY_CHANNEL, "seq": str(last)}
        )
    return last


def _after_commit(session: OrmSession) -> None:
    if not session.info.pop("parkmatch.feed_notify", False):
        return
    seq = session.info.get(LAST_SEQ)
    engine = _engine_of(session)
    with _watchers_lock:
        callbacks = [cb for db, cb in _watchers if db is engine]
    for callback in callbacks:
        callback(int(seq))


def _after_transaction_end(session: OrmSession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended: a rollback drops what was collected
        session.info.pop(_PENDING, None)
        session.info.pop("parkmatch.feed_notify", None)


def install() -> None:
    """Register the hooks on every session (idempotent; done when this module is imported)."""
    hooks = (
        ("after_flush", _after_flush),
        ("do_orm_execute", _on_execute),
        ("before_commit", _before_commit),
        ("after_commit", _after_commit),
        ("after_transaction_end", _after_transaction_end),
    )
    for name, fn in hooks:
        if not event.contains(OrmSession, name, fn):
            event.listen(OrmSession, name, fn)


install()
