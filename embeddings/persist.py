"""Crash-safe persistence: atomic writes, fsync, checksums, library versions and versioned index directories.

Every persisted artefact of the project (indexes, models, registry state) writes through these; both the
vector and the lexical index save into the versioned directories.

A versioned directory holds one sub-directory per saved version (``v<millis>-<rand>``) and a ``CURRENT``
pointer file. ``write_versioned`` writes a version through a temporary directory (files fsynced and
checksummed into the version's manifest, directory renamed, parent fsynced) and only then atomically
replaces ``CURRENT``; the previous version is kept. ``read_versioned`` verifies sizes and checksums and falls
back to the previous complete version when the current one is damaged. JSON *attachments* (e.g. the record
stamps an index holds) are saved inside the same version and checksummed with it, so a fallback brings back
the attachments that describe the data actually loaded."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import os
import platform
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
POINTER_NAME = "CURRENT"
LOCK_NAME = ".lock"
VERSION_PREFIX = "v"
TMP_PREFIX = ".tmp-"


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


# --------------------------------------------------------------------------------------------------
# index identity: errors and manifest
# --------------------------------------------------------------------------------------------------


class IndexMismatchError(ValueError):
    """The stored index was built for another model or dimension than the one in use."""


class IndexCorruptError(RuntimeError):
    """No complete, checksum-valid version of the index could be read."""


@dataclasses.dataclass
class IndexManifest:
    """Identity and integrity record written next to every saved index version."""

    model_id: str
    dimension: int
    backend: str  # "faiss" | "numpy" | "bm25"
    kind: str  # "flat" | "hnsw" | "ivf" | "exact" | "bm25"
    count: int  # live records
    id_checksum: str  # sha256 of the sorted live ids (little-endian int64)
    created_at: str = ""  # ISO-8601 UTC time of the save
    build_seconds: float = 0.0  # time spent building the structure that was saved
    library_versions: dict[str, str] = dataclasses.field(default_factory=dict)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    files: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # name -> sha256, size
    attachments: list[str] = dataclasses.field(default_factory=list)  # names of the JSON attachments
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexManifest:
        names = {f.name for f in dataclasses.fields(cls)}
        missing = {"model_id", "dimension", "backend", "kind", "count", "id_checksum"} - set(data)
        if missing:
            raise IndexCorruptError(f"manifest lacks {sorted(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names})


def id_checksum(ids: np.ndarray) -> str:
    """sha256 of the sorted id set, so two indexes over the same records compare equal."""
    arr = np.sort(np.asarray(ids, dtype=np.int64)).astype("<i8", copy=False)
    return hashlib.sha256(arr.tobytes()).hexdigest()


def check_manifest(
    manifest: IndexManifest, where: str, *, expected_model_id: str | None, expected_dimension: int | None
) -> None:
    """Raise ``IndexMismatchError`` when the index was built for another model or dimension."""
    problems = []
    if expected_model_id is not None and manifest.model_id != expected_model_id:
        problems.append(f"model {manifest.model_id!r} (expected {expected_model_id!r})")
    if expected_dimension is not None and int(manifest.dimension) != int(expected_dimension):
        problems.append(f"dimension {manifest.dimension} (expected {expected_dimension})")
    if problems:
        raise IndexMismatchError(
            f"index in {where} was built with " + " and ".join(problems) + "; rebuild it from the store"
        )


# --------------------------------------------------------------------------------------------------
# versioned directories: writing
# --------------------------------------------------------------------------------------------------

_ATTACHMENT_NAME = re.compile(r"[A-Za-z0-9_-]+")


def list_versions(directory: Path) -> list[str]:
    """Names of the version sub-directories of ``directory``, newest first."""
    if not directory.is_dir():
        return []
    return sorted(
        (p.name for p in directory.iterdir() if p.is_dir() and p.name.startswith(VERSION_PREFIX)),
        reverse=True,
    )


def _new_version_name(directory: Path) -> str:
    now = int(time.time() * 1000)
    existing = list_versions(directory)
    if existing:  # keep names ordered even if the clock went backwards
        try:
            now = max(now, int(existing[0][1:].split("-")[0]) + 1)
        except ValueError:
            pass
    return f"{VERSION_PREFIX}{now:014d}-{secrets.token_hex(3)}"


_DIR_LOCKS: dict[str, threading.Lock] = {}
_DIR_LOCKS_GUARD = threading.Lock()


@contextmanager
def directory_lock(root: Path) -> Iterator[None]:
    """One save at a time per directory: a thread lock plus an advisory ``flock`` across processes
    (so leftovers of interrupted saves can be cleaned without touching a save in progress)."""
    key = str(root.resolve())
    with _DIR_LOCKS_GUARD:
        lock = _DIR_LOCKS.setdefault(key, threading.Lock())
    with lock:
        fh = open(root / LOCK_NAME, "a+b")
        try:
            try:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - non-POSIX
                pass
            yield
        finally:
            fh.close()  # releases the flock


def write_versioned(
    directory: str | os.PathLike[str],
    write_files: Callable[[Path], None],
    manifest: IndexManifest,
    *,
    attachments: Mapping[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write a new version of an index under ``directory`` crash-safely and return its path.

    ``write_files(tmp_dir)`` writes the payload files; each of ``attachments`` (name -> JSON-able value) is
    written as ``<name>.json`` beside them. Each file is fsynced and checksummed into the manifest, the
    temporary directory is renamed to its final versioned name, and only then is the ``CURRENT`` pointer
    replaced (write temp + fsync + rename + fsync of the directory). A crash at any point leaves
    ``CURRENT`` naming a complete version. The newest ``keep`` versions are retained.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    with directory_lock(root):
        return _write_versioned_locked(root, write_files, manifest, dict(attachments or {}), keep=keep)


def _write_attachments(tmp: Path, attachments: dict[str, Any]) -> list[str]:
    for name, value in attachments.items():
        path = tmp / f"{name}.json"
        if not _ATTACHMENT_NAME.fullmatch(name) or path.exists():
            raise ValueError(f"attachment name {name!r} is not a plain name or clashes with a payload file")
        path.write_text(json.dumps(value, ensure_ascii=False, default=str), encoding="utf-8")
    return sorted(attachments)


def _write_version_dir(
    tmp: Path, write_files: Callable[[Path], None], manifest: IndexManifest, attachments: dict[str, Any]
) -> None:
    write_files(tmp)
    manifest.attachments = _write_attachments(tmp, attachments)
    files: dict[str, dict[str, Any]] = {}
    for p in sorted(tmp.iterdir()):
        if p.name == MANIFEST_NAME or not p.is_file():
            continue
        fsync_file(p)
        files[p.name] = {"sha256": sha256_file(p), "size": p.stat().st_size}
    manifest.files = files
    if not manifest.created_at:
        manifest.created_at = datetime.now(UTC).isoformat(timespec="seconds")
    with open(tmp / MANIFEST_NAME, "w", encoding="utf-8") as fh:
        json.dump(manifest.to_dict(), fh, ensure_ascii=False, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    fsync_dir(tmp)


def _write_versioned_locked(
    root: Path,
    write_files: Callable[[Path], None],
    manifest: IndexManifest,
    attachments: dict[str, Any],
    *,
    keep: int,
) -> Path:
    name = _new_version_name(root)
    tmp = root / f"{TMP_PREFIX}{name}"
    tmp.mkdir()
    final = root / name
    try:
        _write_version_dir(tmp, write_files, manifest, attachments)
        os.rename(tmp, final)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    pointer_tmp = root / f"{TMP_PREFIX}{POINTER_NAME}-{secrets.token_hex(4)}"
    with open(pointer_tmp, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(pointer_tmp, root / POINTER_NAME)
    fsync_dir(root)
    _cleanup(root, current=name, keep=keep)
    return final


def _cleanup(root: Path, *, current: str, keep: int) -> None:
    versions = list_versions(root)
    kept = [current] + [v for v in versions if v != current][: max(0, keep - 1)]
    for v in versions:
        if v not in kept:
            shutil.rmtree(root / v, ignore_errors=True)
    for p in root.iterdir():  # leftovers of interrupted saves
        if p.name.startswith(TMP_PREFIX):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                try:
                    p.unlink()
                except OSError:
                    pass


# --------------------------------------------------------------------------------------------------
# versioned directories: reading
# --------------------------------------------------------------------------------------------------


def validate_version(path: Path, *, verify_checksums: bool) -> IndexManifest:
    """The manifest of the version in ``path`` once every file it lists has its size (and checksum)."""
    try:
        with open(path / MANIFEST_NAME, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError as exc:
        raise IndexCorruptError(f"{path.name}: no {MANIFEST_NAME}") from exc
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"{path.name}: unreadable {MANIFEST_NAME}: {exc}") from exc
    if not isinstance(data, dict):
        raise IndexCorruptError(f"{path.name}: {MANIFEST_NAME} is not an object")
    manifest = IndexManifest.from_dict(data)
    if int(manifest.format_version) > FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path.name}: format version {manifest.format_version} is newer than {FORMAT_VERSION}"
        )
    for fname, info in manifest.files.items():
        fpath = path / fname
        if not fpath.is_file():
            raise IndexCorruptError(f"{path.name}: {fname} is missing")
        size = fpath.stat().st_size
        if size != int(info.get("size", -1)):
            raise IndexCorruptError(f"{path.name}: {fname} has {size} bytes, expected {info.get('size')}")
        if verify_checksums and sha256_file(fpath) != info.get("sha256"):
            raise IndexCorruptError(f"{path.name}: {fname} fails its checksum")
    return manifest


def read_versioned(
    directory: str | os.PathLike[str], *, verify_checksums: bool = True
) -> tuple[Path, IndexManifest]:
    """(version directory, manifest) of the version ``CURRENT`` names, or of the newest complete one.

    Raises ``FileNotFoundError`` when nothing was ever saved there and ``IndexCorruptError`` when no
    version passes its size and checksum checks.
    """
    root = Path(directory)
    versions = list_versions(root)
    current: str | None = None
    try:
        current = (root / POINTER_NAME).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("index pointer %s unreadable (%s); looking for the newest complete version", root, exc)
    if current is None and not versions:
        raise FileNotFoundError(f"no saved index in {root}")
    order = ([current] if current else []) + [v for v in versions if v != current]
    problems: list[str] = []
    for i, name in enumerate(order):
        path = root / name
        if not path.is_dir():
            problems.append(f"{name}: missing")
            continue
        try:
            manifest = validate_version(path, verify_checksums=verify_checksums)
        except IndexCorruptError as exc:
            problems.append(str(exc))
            continue
        if i > 0 or current is None:
            logger.warning(
                "index in %s: current version unusable (%s); using %s",
                root,
                "; ".join(problems) or "no pointer",
                name,
            )
        return path, manifest
    raise IndexCorruptError(f"no complete index version in {root}: " + "; ".join(problems))


def read_manifest(directory: str | os.PathLike[str]) -> IndexManifest:
    """Manifest of the version that a load would pick (checksums not verified)."""
    return read_versioned(directory, verify_checksums=False)[1]


def read_attachments(path: Path, manifest: IndexManifest) -> dict[str, Any]:
    """The JSON attachments saved with the version in ``path`` (validated by ``read_versioned``)."""
    out: dict[str, Any] = {}
    for name in manifest.attachments:
        try:
            out[name] = json.loads((path / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"{path.name}: unreadable attachment {name!r}: {exc}") from exc
    return out
