"""Protocols for the pluggable parts of retrieval: encoders and vector indexes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors; queries and documents go through their own calls."""

    model_id: str  # stable identity written into index manifests (name or path + content hash)
    dimension: int

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray: ...

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Inner-product index over normalised vectors keyed by int64 record ids (upsert semantics)."""

    dimension: int

    def __len__(self) -> int: ...

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; ``allowed`` is an optional int64 array of ids to restrict to.

        Rows are padded with id -1 / score -inf when fewer than k qualify."""
        ...

    def ids(self) -> np.ndarray: ...

    def save(self, directory: str) -> None: ...
