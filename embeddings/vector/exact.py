"""The exact inner-product index over a numpy matrix: the reference implementation and the test oracle."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.locks import RWLock
from embeddings.persist import (
    IndexCorruptError,
    IndexManifest,
    id_checksum,
    library_versions,
    read_attachments,
    write_versioned,
)
from embeddings.vector.arrays import (
    as_ids,
    as_query_ids,
    as_vectors,
    dedupe_last,
    empty_result,
    topk_rows,
    unique_slots,
)


class ExactIndex:
    """Exact inner-product search over a numpy matrix: the reference implementation.

    Upsert overwrites rows in place, remove swaps the last row into the hole, so the matrix stays dense.
    Thread-safe (readers-writer lock)."""

    def __init__(self, dimension: int, *, model_id: str = "") -> None:
        if dimension <= 0:
            raise ValueError("dimension must be positive")
        self.dimension = int(dimension)
        self.model_id = model_id
        self._vecs = np.zeros((0, self.dimension), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)
        self._n = 0
        self._row: dict[int, int] = {}
        self._lock = RWLock()
        self.build_seconds = 0.0
        # JSON documents saved with the version this index was loaded from ({} for a new index)
        self.attachments: dict[str, Any] = {}

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ExactIndex(dimension={self.dimension}, count={self._n})"

    def _reserve(self, n: int) -> None:
        cap = self._vecs.shape[0]
        if n <= cap:
            return
        new_cap = max(n, cap * 2, 64)
        vecs = np.zeros((new_cap, self.dimension), dtype=np.float32)
        vecs[: self._n] = self._vecs[: self._n]
        ids = np.full(new_cap, -1, dtype=np.int64)
        ids[: self._n] = self._ids[: self._n]
        self._vecs, self._ids = vecs, ids

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = as_ids(ids)
        vectors = as_vectors(vectors, self.dimension, ids.size)
        ids, vectors = dedupe_last(ids, vectors)
        with self._lock.write():
            rows = np.fromiter((self._row.get(i, -1) for i in ids.tolist()), np.int64, ids.size)
            old = rows >= 0
            self._vecs[rows[old]] = vectors[old]
            new = ~old
            m = int(new.sum())
            if m:
                self._reserve(self._n + m)
                start = self._n
                self._vecs[start : start + m] = vectors[new]
                self._ids[start : start + m] = ids[new]
                for j, i in enumerate(ids[new].tolist()):
                    self._row[i] = start + j
                self._n += m

    def remove(self, ids: np.ndarray) -> None:
        ids = as_query_ids(ids)
        with self._lock.write():
            for i in ids.tolist():
                r = self._row.pop(i, None)
                if r is None:
                    continue
                last = self._n - 1
                if r != last:
                    self._vecs[r] = self._vecs[last]
                    moved = int(self._ids[last])
                    self._ids[r] = moved
                    self._row[moved] = r
                self._ids[last] = -1
                self._n = last

    def ids(self) -> np.ndarray:
        with self._lock.read():
            return np.sort(self._ids[: self._n])

    def __contains__(self, record_id: object) -> bool:
        return int(record_id) in self._row  # type: ignore[call-overload]

    def get_vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of ``ids`` (KeyError for an unknown id)."""
        ids = as_ids(ids)
        with self._lock.read():
            rows = [self._row[i] for i in ids.tolist()]
            return self._vecs[rows].copy()

    def similarities(self, query: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Inner product of ``query`` with each id's stored vector; NaN for ids not in the index."""
        q = as_vectors(query, self.dimension)[0]
        ids = as_query_ids(ids)
        out = np.full(ids.size, np.nan, dtype=np.float32)
        with self._lock.read():
            rows = np.fromiter((self._row.get(i, -1) for i in ids.tolist()), np.int64, ids.size)
            ok = rows >= 0
            if ok.any():
                out[ok] = self._vecs[rows[ok]] @ q
        return out

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = as_vectors(queries, self.dimension)
        k = int(k)
        if k <= 0:
            return empty_result(q.shape[0], 0)
        with self._lock.read():
            if allowed is None:
                rows = None
                mat = self._vecs[: self._n]
            else:
                allowed_ids = as_query_ids(allowed)
                rows = np.fromiter(
                    (self._row.get(i, -1) for i in allowed_ids.tolist()), np.int64, allowed_ids.size
                )
                rows = unique_slots(rows[rows >= 0], self._n)
                mat = self._vecs[rows]
            scores = q @ mat.T
            D, lab = topk_rows(scores, k)
            if rows is not None:
                lab = np.where(lab >= 0, rows[np.maximum(lab, 0)] if rows.size else -1, -1)
            ids = np.where(lab >= 0, self._ids[np.maximum(lab, 0)], -1)
        return D, ids

    def save(self, directory: str, *, attachments: Mapping[str, Any] | None = None) -> None:
        """Write a new version crash-safely (see ``embeddings.persist``), ``attachments`` saved with it."""
        t0 = time.perf_counter()
        with self._lock.read():
            vecs = self._vecs[: self._n].copy()
            ids = self._ids[: self._n].copy()

        def write(tmp: Path) -> None:
            np.save(tmp / "vectors.npy", vecs)
            np.save(tmp / "ids.npy", ids)

        manifest = IndexManifest(
            model_id=self.model_id,
            dimension=self.dimension,
            backend="numpy",
            kind="exact",
            count=int(ids.size),
            id_checksum=id_checksum(ids),
            build_seconds=round(self.build_seconds or (time.perf_counter() - t0), 3),
            library_versions=library_versions("faiss", "numpy"),
        )
        write_versioned(directory, write, manifest, attachments=attachments)

    @classmethod
    def from_version(cls, path: Path, manifest: IndexManifest) -> ExactIndex:
        """The index saved in the (validated) version directory ``path``."""
        try:
            vecs = np.load(path / "vectors.npy", allow_pickle=False)
            ids = np.load(path / "ids.npy", allow_pickle=False)
        except Exception as exc:
            raise IndexCorruptError(f"{path}: cannot read arrays: {exc}") from exc
        if vecs.shape != (ids.size, manifest.dimension) or id_checksum(ids) != manifest.id_checksum:
            raise IndexCorruptError(f"{path}: arrays do not match the manifest")
        index = cls(manifest.dimension, model_id=manifest.model_id)
        index.upsert(ids, vecs)
        index.build_seconds = manifest.build_seconds
        index.attachments = read_attachments(path, manifest)
        return index
