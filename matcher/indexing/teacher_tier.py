"""The teacher tier: the multilingual teacher's document vectors for one side, kept beside the side's index pair
and filled in the background, so that retrieval can give a candidate the teacher's dense similarity instead of
the static student's (`matcher.matching.retrieval.retrieve`).

Off by default (`MATCHER_TEACHER=on` turns it on): the teacher embeds about 9 documents per CPU-second and
adds about 20 ms to each query on the 2-core reference machine, where the student costs nothing noticeable.

* **Writes never wait.** The index pair hands every upsert and delete to `TeacherStore.submit` / `drop`,
  which only note it under a lock; a background thread embeds what is pending in batches. A record whose
  stamp changed loses its old vector at once (it is scored by the student until the new one is there); a
  dropped record loses its vector and any pending work.
* **Persisted per model.** ``<data dir>/teacher/<model id>/<side>``: a versioned directory (as the indexes:
  `embeddings.persist`), the matrix and the ids checksummed, the stamps of the vectors attached. At start
  the indexer queues every record the store has whose vector is missing or stale.
* **Coverage** (records with a current teacher vector / records on the side) is reported by /readyz and
  ``parkmatch_teacher_coverage``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.encoders.base import Encoder
from embeddings.persist import (
    IndexCorruptError,
    IndexManifest,
    id_checksum,
    read_attachments,
    read_versioned,
    write_versioned,
)
from matcher.errors import ServiceUnavailable
from matcher.settings import Settings

logger = logging.getLogger(__name__)

STAMPS = "stamps"
RETRY_S = 5.0  # after a failed batch, before trying it again


class TeacherUnavailable(ServiceUnavailable):
    """The teacher tier is on but its model or its calibration cannot be used: the service says why and stops."""


def teacher_location(settings: Settings) -> Path:
    from matcher.models.encoder import shipped_teacher_dir

    return Path(settings.teacher_model) if settings.teacher_model else shipped_teacher_dir(settings)


def load_teacher(settings: Settings) -> Encoder:
    """The configured teacher; `TeacherUnavailable` with one readable line when it cannot be loaded."""
    from embeddings.encoders.sentence import load_encoder

    where = teacher_location(settings)
    if not (where / "modules.json").is_file():
        hint = (
            "run `matcher encoder build --keep-teacher`"
            if settings.teacher_model is None
            else "set MATCHER_TEACHER_MODEL to a sentence-transformers model directory"
        )
        raise TeacherUnavailable(f"MATCHER_TEACHER=on but there is no teacher model at {where}: {hint}")
    try:
        return load_encoder(where)
    except (ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TeacherUnavailable(
            f"MATCHER_TEACHER=on but the teacher at {where} cannot be loaded: {first}"
        ) from None


def _safe(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", model_id)


class TeacherStore:
    """One side's teacher vectors (a matrix with free rows, an id -> row map and each vector's stamp) and the
    queue that fills it."""

    def __init__(self, name: str, encoder: Encoder, root: Path, *, batch: int = 32) -> None:
        self.name = name
        self.encoder = encoder
        self.root = root / _safe(encoder.model_id) / name
        self.batch = batch
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._vecs = np.zeros((0, encoder.dimension), dtype=np.float32)
        self._row: dict[int, int] = {}
        self._free: list[int] = []
        self._stamp: dict[int, float] = {}  # the stamp of the record each vector was embedded from
        self._wanted: dict[int, float] = {}  # the current stamp of every record the side holds
        self._pending: dict[int, tuple[str, float]] = {}  # id -> (text, stamp) waiting to be embedded
        self._busy = 0  # records taken by the worker and not stored yet
        self._thread: threading.Thread | None = None
        self._stop = False
        self.dirty = False
        self.embedded = 0  # records embedded since start
        self.skipped = 0  # records the teacher gave no finite vector for (left to the student)
        self.embed_seconds = 0.0
        self._qcache: tuple[str, np.ndarray] | None = None
        # the query languages the tier has a calibration for (None: every one); others stay with the student
        self.languages: frozenset[str] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._run, name=f"teacher-{self.name}", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def load(self) -> None:
        """Load the saved vectors; an unreadable save is dropped (the start queues every record again)."""
        try:
            path, manifest = read_versioned(self.root)
        except FileNotFoundError:
            return
        except (IndexCorruptError, OSError, ValueError) as exc:
            logger.warning("teacher vectors in %s unusable (%s): embedding again", self.root, exc)
            return
        if manifest.model_id != self.encoder.model_id or int(manifest.dimension) != self.encoder.dimension:
            raise TeacherUnavailable(
                f"the teacher vectors in {self.root} were made by {manifest.model_id!r} "
                f"(dimension {manifest.dimension}), not by the configured teacher {self.encoder.model_id!r} "
                f"(dimension {self.encoder.dimension}): remove that directory"
            )
        try:
            ids = np.load(path / "ids.npy")
            vecs = np.load(path / "vectors.npy")
            stamps = read_attachments(path, manifest).get(STAMPS, {})
            if len(ids) != len(vecs) or vecs.shape[1:] != (self.encoder.dimension,):
                raise ValueError("ids and vectors disagree")
        except (OSError, ValueError, KeyError, IndexCorruptError) as exc:
            logger.warning("teacher vectors in %s unusable (%s): embedding again", self.root, exc)
            return
        with self._lock:
            self._vecs = np.ascontiguousarray(vecs, dtype=np.float32)
            self._row = {int(i): r for r, i in enumerate(ids.tolist())}
            self._free = []
            self._stamp = {int(i): float(stamps.get(str(int(i)), -1.0)) for i in ids.tolist()}

    def save(self) -> None:
        """Write the vectors as a new version (only when they changed since the last save)."""
        with self._lock:
            if not self.dirty:
                return
            self.dirty = False
            ids = np.fromiter(self._row.keys(), dtype=np.int64, count=len(self._row))
            rows = np.fromiter(self._row.values(), dtype=np.int64, count=len(self._row))
            vecs = self._vecs[rows].copy()
            stamps = {str(int(i)): self._stamp[int(i)] for i in ids.tolist()}
        manifest = IndexManifest(
            model_id=self.encoder.model_id,
            dimension=self.encoder.dimension,
            backend="numpy",
            kind="exact",
            count=int(len(ids)),
            id_checksum=id_checksum(ids),
        )

        def write(tmp: Path) -> None:
            np.save(tmp / "ids.npy", ids)
            np.save(tmp / "vectors.npy", vecs)

        write_versioned(self.root, write, manifest, attachments={STAMPS: stamps})

    # ------------------------------------------------------------------ writes (never wait for the teacher)
    def submit(self, ids: Sequence[int], texts: Sequence[str], stamps: Sequence[float]) -> None:
        """Queue records for embedding; a record whose vector is of another stamp loses it now."""
        with self._wake:
            for i, text, s in zip(ids, texts, stamps, strict=True):
                i, s = int(i), float(s)
                self._wanted[i] = s
                if i in self._row and self._stamp.get(i) == s:
                    self._pending.pop(i, None)
                    continue
                self._forget(i)
                self._pending[i] = (text, s)
            self._wake.notify_all()

    def drop(self, ids: Sequence[int]) -> None:
        with self._lock:
            for i in ids:
                i = int(i)
                self._wanted.pop(i, None)
                self._pending.pop(i, None)
                self._forget(i)

    def retain(self, stamps: dict[int, float]) -> set[int]:
        """At start: the side holds exactly ``stamps``; vectors of other records are dropped. Returns the ids
        without a vector of their current stamp (the caller submits their texts)."""
        with self._lock:
            for i in [i for i in self._row if i not in stamps]:
                self._forget(i)
            self._wanted = {int(i): float(s) for i, s in stamps.items()}
            return {i for i, s in self._wanted.items() if self._stamp.get(i) != s or i not in self._row}

    def _forget(self, i: int) -> None:  # under the lock
        row = self._row.pop(i, None)
        if row is not None:
            self._free.append(row)
            self._stamp.pop(i, None)
            self.dirty = True

    # ------------------------------------------------------------------ the queue
    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                take = list(self._pending.items())[: self.batch]
                for i, _ in take:
                    del self._pending[i]
                self._busy = len(take)
            t0 = time.perf_counter()
            try:
                vecs = np.asarray(self.encoder.encode_documents([t for _, (t, _) in take]), dtype=np.float32)
            except Exception:  # noqa: BLE001 - one bad batch must not end the queue
                logger.exception(
                    "teacher tier (%s): embedding %d records failed; retrying", self.name, len(take)
                )
                with self._wake:
                    for i, item in take:
                        if self._wanted.get(i) == item[1]:
                            self._pending.setdefault(i, item)
                    self._busy = 0
                    self._wake.notify_all()
                    self._wake.wait(RETRY_S)
                continue
            with self._wake:
                self.embed_seconds += time.perf_counter() - t0
                for (i, (_, s)), v in zip(take, vecs, strict=True):
                    if self._wanted.get(i) != s:  # dropped or changed while it was embedded
                        continue
                    if not np.isfinite(v).all():  # no vector for this text: the student keeps scoring it
                        self.skipped += 1
                        continue
                    self._put(i, v, s)
                self.embedded += len(take)
                self._busy = 0
                self._wake.notify_all()

    def _put(self, i: int, v: np.ndarray, s: float) -> None:  # under the lock
        row = self._row.get(i)
        if row is None:
            if self._free:
                row = self._free.pop()
            else:
                row = len(self._vecs)
                grow = max(64, len(self._vecs))
                self._vecs = np.concatenate([self._vecs, np.zeros((grow, self._vecs.shape[1]), np.float32)])
                self._free.extend(range(len(self._vecs) - 1, row, -1))
        self._vecs[row] = v
        self._row[i] = row
        self._stamp[i] = s
        self.dirty = True

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until nothing is pending (tests, evaluation); False when ``timeout`` passed first."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._wake:
            while self._pending or self._busy:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._wake.wait(left)
        return True

    # ------------------------------------------------------------------ reads
    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + self._busy

    def coverage(self) -> tuple[int, int]:
        """(records with a current teacher vector, records on the side)."""
        with self._lock:
            have = sum(1 for i, s in self._wanted.items() if self._stamp.get(i) == s)
            return have, len(self._wanted)

    @property
    def vectors(self) -> int:
        """Records holding a teacher vector now."""
        return len(self._row)

    def has(self, i: int) -> bool:
        with self._lock:
            return i in self._row

    def query_vector(self, text: str) -> np.ndarray:
        """The teacher's query embedding (the model's query prompt); the last one is kept, since one request
        retrieves once per kind."""
        cached = self._qcache
        if cached is not None and cached[0] == text:
            return cached[1]
        vec = np.asarray(self.encoder.encode_queries([text]), dtype=np.float32)[0]
        self._qcache = (text, vec)
        return vec

    def similarities(self, qvec: np.ndarray, ids: Sequence[int]) -> dict[int, float]:
        """Cosine of the query with each of ``ids`` that has a current teacher vector."""
        with self._lock:
            found = [(int(i), self._row[int(i)]) for i in ids if int(i) in self._row]
            if not found:
                return {}
            sims = self._vecs[[r for _, r in found]] @ qvec
        return {i: float(s) for (i, _), s in zip(found, sims, strict=True)}
