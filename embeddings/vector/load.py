"""Loading a saved vector index: the backend its manifest names, checked against the model in use."""

from __future__ import annotations

import os
from typing import Any

from embeddings.persist import IndexMismatchError, check_manifest, read_versioned
from embeddings.vector.exact import ExactIndex
from embeddings.vector.faiss_index import FaissIndex


def load_index(
    directory: str | os.PathLike[str],
    *,
    expected_model_id: str | None,
    expected_dimension: int | None,
    verify_checksums: bool = True,
    **overrides: Any,
) -> FaissIndex | ExactIndex:
    """Load the current saved version (falling back to the previous complete one if it is damaged).

    Raises ``IndexMismatchError`` when the index was built for another model or dimension,
    ``IndexCorruptError`` when no complete version is readable and ``FileNotFoundError`` when nothing
    was saved. ``overrides`` replace stored ``FaissIndex`` settings (e.g. ``ef_search``, ``background``).
    An ``ExactIndex`` comes back for directories written by ``ExactIndex.save``; either carries the
    attachments saved with the version loaded.
    """
    path, manifest = read_versioned(directory, verify_checksums=verify_checksums)
    check_manifest(
        manifest, str(directory), expected_model_id=expected_model_id, expected_dimension=expected_dimension
    )
    if manifest.backend == "numpy":
        return ExactIndex.from_version(path, manifest)
    if manifest.backend != "faiss":
        raise IndexMismatchError(f"index in {directory} is a {manifest.backend!r} index, not a vector index")
    return FaissIndex.from_version(path, manifest, **overrides)
