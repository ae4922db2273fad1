"""Crash-safe files: atomic JSON writes, fsync of files and directories, file checksums, the library versions
an artefact records. Every persisted artefact of the project (indexes, stamps, models, registry state) writes
through these."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write `path` so that a crash leaves either the old file or the new one: temp file, fsync, rename,
    fsync of the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any, *, indent: int | None = None) -> None:
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=indent, default=str))


def library_versions(*modules: str) -> dict[str, str]:
    """Python's version and each named module's `__version__` (e.g. "numpy", "faiss", "sklearn"), as an
    artefact's manifest records them."""
    out = {"python": platform.python_version()}
    for name in modules:
        mod = importlib.import_module(name)
        out["scikit-learn" if name == "sklearn" else name] = str(getattr(mod, "__version__", "unknown"))
    return out
