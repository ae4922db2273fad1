"""A disk cache of an encoder's vectors keyed by the model and the text, for offline runs (evaluation,
calibration) that embed the same corpus again and again with a slow encoder.

Layout: ``<root>/<model id, made file-safe>/<shard>.npz``, each shard holding ``keys`` (SHA-256 of the kind and
the text, 32 bytes each) and ``vectors`` (float32 rows); shards are written atomically (temporary file, fsync,
rename), so an interrupted run keeps every shard it finished. A key is the kind ("query" or "document") plus
the text, so a query and a document with the same text never share a vector."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from embeddings.persist import fsync_dir


def text_key(kind: str, text: str) -> bytes:
    return hashlib.sha256(f"{kind}\x00{text}".encode()).digest()


def _safe(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@-]+", "_", model_id)


class VectorCache:
    def __init__(self, root: str | os.PathLike[str], model_id: str) -> None:
        self.dir = Path(root) / _safe(model_id)
        self.model_id = model_id
        self._rows: dict[bytes, np.ndarray] = {}
        self._load()

    def _load(self) -> None:
        if not self.dir.is_dir():
            return
        for path in sorted(self.dir.glob("*.npz")):
            try:
                with np.load(path) as z:
                    keys, vecs = z["keys"], z["vectors"]
            except (OSError, ValueError, KeyError):
                continue  # a damaged shard: its texts are embedded again
            for k, v in zip(keys, vecs, strict=True):
                self._rows[bytes(k)] = v

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, kind: str, text: str) -> np.ndarray | None:
        return self._rows.get(text_key(kind, text))

    def put_many(self, kind: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        if not len(texts):
            return
        keys = np.frombuffer(b"".join(text_key(kind, t) for t in texts), dtype=np.uint8).reshape(-1, 32)
        vecs = np.asarray(vectors, dtype=np.float32)
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"{kind}-{secrets.token_hex(6)}"
        tmp = self.dir / f".{name}.tmp.npz"
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, vectors=vecs)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(self.dir / f"{name}.npz")
        fsync_dir(self.dir)
        for k, v in zip(keys, vecs, strict=True):
            self._rows[bytes(k)] = v

    def embed(
        self,
        kind: str,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        *,
        batch: int = 256,
    ) -> np.ndarray:
        """Vectors for ``texts``: cached ones read, the others encoded by ``encode`` in batches of ``batch``
        (each batch saved as it is done) and cached."""
        todo = list(dict.fromkeys(t for t in texts if text_key(kind, t) not in self._rows))
        for start in range(0, len(todo), batch):
            part = todo[start : start + batch]
            self.put_many(kind, part, encode(part))
        return (
            np.stack([self._rows[text_key(kind, t)] for t in texts])
            if texts
            else np.zeros((0, 0), np.float32)
        )

    def cached_encoder(self, encoder, *, cached_only: bool = False):  # noqa: ANN001, ANN201 - Encoder in and out
        return CachedEncoder(encoder, self, cached_only=cached_only)


class CachedEncoder:
    """An encoder whose vectors go through a `VectorCache` (same model id and dimension as the one it wraps).
    ``cached_only``: documents not in the cache get a NaN row instead of being embedded (a measurement on what
    the cache holds; the teacher tier leaves such records to the student)."""

    def __init__(self, encoder, cache: VectorCache, *, cached_only: bool = False) -> None:  # noqa: ANN001
        self.inner = encoder
        self.cache = cache
        self.cached_only = cached_only
        self.model_id = encoder.model_id
        self.dimension = encoder.dimension
        self.source = getattr(encoder, "source", None)

    def encode_queries(self, texts: Sequence[str], **kw) -> np.ndarray:  # noqa: ANN003
        return self.cache.embed("query", list(texts), lambda b: self.inner.encode_queries(b, **kw))

    def encode_documents(self, texts: Sequence[str], **kw) -> np.ndarray:  # noqa: ANN003
        if self.cached_only:
            nan = np.full(self.dimension, np.nan, np.float32)
            rows = [self.cache.get("document", t) for t in texts]
            return (
                np.stack([nan if r is None else r for r in rows]) if rows else np.zeros((0, self.dimension))
            )
        return self.cache.embed("document", list(texts), lambda b: self.inner.encode_documents(b, **kw))
