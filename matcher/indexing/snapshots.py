"""Index snapshots shared between replicas: a new replica starts from the newest one that fits instead of
re-embedding the whole store.

A snapshot is a directory ``<snapshot dir>/s<seq>-<millis>-<rand>/`` that holds both sides' index pairs in the
layout of a data dir's ``index/`` (each index a versioned, checksummed directory with its record stamps
attached, as ``embeddings.persist`` writes them) and ``snapshot.json``: the change-feed sequence it holds up
to, the encoder (model id and dimension), the store's schema revision, counts, when and where it was written.
It is written into a hidden temporary directory and renamed into place, so a reader never sees half of one;
the newest ``keep`` are kept.

Restoring copies the newest snapshot that fits (same encoder, same schema revision) into a replica's empty
index directory. The start then reconciles it with the store by record stamps, so whatever changed after the
snapshot is re-indexed and nothing else: a snapshot saves work and is never trusted over the store. A snapshot
that does not fit is skipped with one log line saying why; one that is unreadable is skipped the same way."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embeddings.persist import atomic_write_json, fsync_dir

if TYPE_CHECKING:
    from matcher.indexing.indexer import Indexer

logger = logging.getLogger(__name__)

FORMAT = 1
INFO_NAME = "snapshot.json"
PREFIX = "s"
TMP_PREFIX = ".tmp-"
SIDES = ("supply", "demand")


class SnapshotError(ValueError):
    """A snapshot directory that cannot be used; the message is one readable line."""


@dataclass(frozen=True)
class SnapshotInfo:
    path: Path
    seq: int
    model_id: str
    dimension: int
    schema_revision: str
    created_at: str
    counts: dict[str, int] = field(default_factory=dict)
    written_by: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["path"] = str(self.path)
        return out

    def unfit_reason(self, *, model_id: str, dimension: int, schema_revision: str) -> str | None:
        """Why this snapshot cannot seed a replica with that encoder and schema (None: it fits)."""
        if self.model_id != model_id or self.dimension != dimension:
            return f"built by encoder {self.model_id} ({self.dimension} dimensions), not {model_id} ({dimension})"
        if self.schema_revision != schema_revision:
            return f"taken at schema revision {self.schema_revision}, the store is at {schema_revision}"
        return None


def _read_info(path: Path) -> SnapshotInfo:
    try:
        raw = json.loads((path / INFO_NAME).read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise SnapshotError(
                f"snapshot {path.name}: format {raw.get('format')!r}, this code reads {FORMAT}"
            )
        return SnapshotInfo(
            path=path,
            seq=int(raw["seq"]),
            model_id=str(raw["model_id"]),
            dimension=int(raw["dimension"]),
            schema_revision=str(raw["schema_revision"]),
            created_at=str(raw["created_at"]),
            counts={str(k): int(v) for k, v in dict(raw.get("counts", {})).items()},
            written_by=str(raw.get("written_by", "")),
        )
    except SnapshotError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"snapshot {path.name} is unreadable ({type(exc).__name__}: {exc})") from None


def list_snapshots(root: Path) -> list[SnapshotInfo]:
    """The readable snapshots under ``root``, newest first (highest sequence, then latest written)."""
    if not root.is_dir():
        return []
    found: list[SnapshotInfo] = []
    for path in root.iterdir():
        if not path.is_dir() or not path.name.startswith(PREFIX):
            continue
        try:
            found.append(_read_info(path))
        except SnapshotError as exc:
            logger.warning("%s", exc)
    return sorted(found, key=lambda s: (s.seq, s.created_at, s.path.name), reverse=True)


def choose(
    root: Path, *, model_id: str, dimension: int, schema_revision: str
) -> tuple[SnapshotInfo | None, list[str]]:
    """The newest snapshot that fits, and one line for each newer one skipped (why it does not fit)."""
    skipped: list[str] = []
    for snap in list_snapshots(root):
        reason = snap.unfit_reason(model_id=model_id, dimension=dimension, schema_revision=schema_revision)
        if reason is None:
            return snap, skipped
        skipped.append(f"index snapshot {snap.path.name} (seq {snap.seq}) skipped: {reason}")
    return None, skipped


def write_snapshot(
    indexer: Indexer, root: Path, *, seq: int, schema_revision: str, keep: int = 3
) -> SnapshotInfo:
    """Save the indexer's current indexes as a new snapshot under ``root`` and prune all but the newest
    ``keep``. The stamps saved are taken before the indexes are written (as every save does), and ``seq`` is
    read by the caller before that: the snapshot may hold a little more than ``seq`` says, never less."""
    root.mkdir(parents=True, exist_ok=True)
    millis = int(time.time() * 1000)
    name = f"{PREFIX}{seq:012d}-{millis}-{secrets.token_hex(3)}"
    tmp = root / f"{TMP_PREFIX}{name}"
    tmp.mkdir()
    try:
        counts = indexer.save_to(tmp)
        info = {
            "format": FORMAT,
            "seq": int(seq),
            "model_id": indexer.encoder.model_id,
            "dimension": int(indexer.encoder.dimension),
            "schema_revision": schema_revision,
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "counts": counts,
            "written_by": f"{socket.gethostname()}:{os.getpid()}",
        }
        atomic_write_json(tmp / INFO_NAME, info)
        fsync_dir(tmp)
        os.replace(tmp, root / name)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    prune(root, keep=keep)
    return _read_info(root / name)


def prune(root: Path, *, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` snapshots and temporary directories left by a crash over an hour
    ago (another replica may be writing a newer one)."""
    removed: list[str] = []
    for snap in list_snapshots(root)[max(keep, 1) :]:
        shutil.rmtree(snap.path, ignore_errors=True)
        removed.append(snap.path.name)
    cutoff = time.time() - 3600
    for path in root.glob(f"{TMP_PREFIX}*"):
        try:
            if path.stat().st_mtime < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path.name)
        except OSError:
            continue
    return removed


def has_index(index_dir: Path) -> bool:
    """Whether a data dir already holds indexes of its own (a restore never replaces them)."""
    return any((index_dir / side).exists() for side in SIDES)


def restore(snap: SnapshotInfo, index_dir: Path) -> None:
    """Copy a snapshot's indexes into an index directory that has none, atomically per side."""
    if has_index(index_dir):
        raise SnapshotError(f"{index_dir} already holds indexes; a snapshot only seeds an empty one")
    index_dir.mkdir(parents=True, exist_ok=True)
    staging = index_dir / f"{TMP_PREFIX}restore-{secrets.token_hex(3)}"
    try:
        for side in SIDES:
            shutil.copytree(snap.path / side, staging / side)
        for side in SIDES:
            os.replace(staging / side, index_dir / side)
        fsync_dir(index_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def seed_from_snapshot(
    index_dir: Path, root: Path, *, model_id: str, dimension: int, schema_revision: str
) -> SnapshotInfo | None:
    """At a replica's start: when its index directory is empty, copy in the newest snapshot that fits.
    Returns the snapshot used (None: none fitted, or the replica has indexes of its own)."""
    if has_index(index_dir):
        return None
    snap, skipped = choose(root, model_id=model_id, dimension=dimension, schema_revision=schema_revision)
    for line in skipped:
        logger.warning("%s", line)
    if snap is None:
        logger.info("no index snapshot in %s fits; indexing the store", root)
        return None
    try:
        restore(snap, index_dir)
    except (OSError, SnapshotError) as exc:
        logger.warning("index snapshot %s could not be copied (%s); indexing the store", snap.path.name, exc)
        shutil.rmtree(index_dir / "supply", ignore_errors=True)
        shutil.rmtree(index_dir / "demand", ignore_errors=True)
        return None
    logger.info("indexes seeded from snapshot %s (seq %d, %s)", snap.path.name, snap.seq, snap.counts)
    return snap


class SnapshotScheduler:
    """Writes a snapshot every ``every_s`` seconds while the indexes changed since the last one. Any replica
    may run one; names never collide and pruning keeps the newest."""

    def __init__(
        self,
        indexer: Indexer,
        root: Path,
        *,
        every_s: float,
        keep: int,
        schema_revision: str,
        seq: Callable[[], int],
    ) -> None:
        self.indexer = indexer
        self.root = root
        self.every_s = every_s
        self.keep = keep
        self.schema_revision = schema_revision
        self.seq = seq
        self.last: SnapshotInfo | None = None
        self._written_at_change = -1
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.every_s <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="index-snapshots", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self.indexer.closing.wait(self.every_s):
            self.maybe_write()

    def maybe_write(self) -> SnapshotInfo | None:
        """Write a snapshot if the indexes changed since the last one; a failure is logged, never raised."""
        changes = self.indexer.changes
        if changes == self._written_at_change:
            return None
        try:
            self.last = write_snapshot(
                self.indexer, self.root, seq=self.seq(), schema_revision=self.schema_revision, keep=self.keep
            )
        except Exception:  # noqa: BLE001 - the next period tries again; serving is unaffected
            logger.exception("index snapshot to %s failed", self.root)
            return None
        self._written_at_change = changes
        logger.info("index snapshot %s written (seq %d)", self.last.path.name, self.last.seq)
        return self.last
