"""Sentence-transformers encoders behind the :class:`embeddings.encoders.base.Encoder` protocol.

``load_encoder(name_or_path)`` accepts

* a local model directory (``modules.json`` + weights), e.g. the project's own static model trained with
  :func:`training.encoders.static.train_static_encoder`, or a model shipped inside an installed Python package. Local
  directories are always loaded with ``local_files_only``: nothing is fetched, nothing is looked up online;
* a Hugging Face Hub name (``org/name``), loaded the normal sentence-transformers way for installations with
  network access; with ``offline=True`` it is only looked up in the local cache.

A model directory saved before the static encoder moved to ``embeddings.encoders`` names the old class path in
its ``modules.json``; loading it rewrites that file once (see :func:`_migrate_modules_json`).

Anything else raises :class:`EncoderNotFoundError` with one readable line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.encoders.base import Encoder
from embeddings.persist import atomic_write_json

logger = logging.getLogger(__name__)

__all__ = ["EncoderNotFoundError", "SentenceTransformerEncoder", "load_encoder", "model_dir_hash"]

# Module classes outside sentence-transformers that this project ships and may import from a modules.json.
_STATIC_ZH = "embeddings.encoders.static_zh.StaticZhEmbedding"
_PROJECT_MODULES = {_STATIC_ZH}
# Class paths older saved models name -> where the class lives now.
_MOVED_MODULES = {"embeddings.static_zh.StaticZhEmbedding": _STATIC_ZH}
# Files that identify a model's behaviour; everything else (README, manifests, caches) is not hashed.
_HASHED_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".pt")
_NOT_HASHED = {"training_manifest.json", "README.md"}
# "name" or "org/name" as the Hub spells them; no path syntax
_HUB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95})?$")
_STATIC_BATCH = 2048  # static models cost nothing per batch: larger batches amortise Python overhead


class EncoderNotFoundError(ValueError):
    """The encoder name or path does not lead to a loadable model."""


def _looks_like_hub_name(name: str) -> bool:
    if name.startswith((".", "/", "~")) or "\\" in name or name.endswith("/"):
        return False
    return bool(_HUB_NAME.match(name)) and ".." not in name


def model_dir_hash(path: str | os.PathLike, length: int = 12) -> str:
    """Short SHA-256 over the names and contents of a model directory's config, vocabulary and weight files."""
    root = Path(path)
    h = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.name not in _NOT_HASHED
        and p.suffix in _HASHED_SUFFIXES
        and ".cache" not in p.relative_to(root).parts  # the model's own cache folder, not one it lies in
    )
    for p in files:
        h.update(p.relative_to(root).as_posix().encode("utf-8"))
        h.update(b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:length]


def _read_modules_json(path: Path) -> list[dict[str, Any]]:
    modules_json = path / "modules.json"
    if not modules_json.is_file():
        return []
    try:
        modules = json.loads(modules_json.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise EncoderNotFoundError(f"{path}: modules.json is not readable ({exc})") from None
    if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
        raise EncoderNotFoundError(f"{path}: modules.json is not readable (a list of modules with a type)")
    return modules


def _migrate_modules_json(path: Path) -> list[str]:
    """The module types of ``path``'s modules.json, after rewriting class paths that have moved since the model
    was saved (atomically, logged; the rewrite changes the model's hash, so its indexes are rebuilt once).
    A directory that cannot be written keeps its old names: they are resolved in memory on every load."""
    modules = _read_modules_json(path)
    moved = [m for m in modules if m["type"] in _MOVED_MODULES]
    if not moved:
        return [str(m["type"]) for m in modules]
    for m in moved:
        m["type"] = _MOVED_MODULES[m["type"]]
    try:
        atomic_write_json(path / "modules.json", modules, indent=2)
    except OSError as exc:
        logger.warning("%s: modules.json names moved classes and cannot be rewritten (%s)", path, exc)
        return [str(m["type"]) for m in _read_modules_json(path)]
    logger.warning("%s: modules.json rewritten to the current class path %s", path, _STATIC_ZH)
    return [str(m["type"]) for m in modules]


def _project_module_class(class_ref: str) -> type:
    if _MOVED_MODULES.get(class_ref, class_ref) == _STATIC_ZH:
        from embeddings.encoders.static_zh import StaticZhEmbedding

        return StaticZhEmbedding
    raise KeyError(class_ref)


def _load_local(path: Path, device: str):
    from sentence_transformers import SentenceTransformer

    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise EncoderNotFoundError(f"{path} is not a sentence-transformers model directory (no modules.json)")
    custom = [t for t in _migrate_modules_json(path) if not t.startswith("sentence_transformers.")]
    foreign = [t for t in custom if _MOVED_MODULES.get(t, t) not in _PROJECT_MODULES]
    if foreign:
        raise EncoderNotFoundError(
            f"{path} needs module classes outside sentence-transformers and this project ({', '.join(foreign)}); "
            "refusing to import them"
        )
    kwargs: dict[str, Any] = {"device": device, "local_files_only": True}
    if not custom:
        return SentenceTransformer(str(path), **kwargs)
    classes = {t: _project_module_class(t) for t in custom}
    loader = getattr(SentenceTransformer, "_load_with_module_classes", None)
    if loader is not None:
        # resolves the project's own classes directly instead of importing whatever modules.json names
        return loader(str(path), classes, **kwargs)
    if any(t in _MOVED_MODULES for t in custom):
        raise EncoderNotFoundError(f"{path}: modules.json names moved classes and the directory is read-only")
    if any(path.glob("*.py")):  # never let a model directory's own code run in place of ours
        raise EncoderNotFoundError(f"{path} contains Python files; refusing to load it as a project model")
    return SentenceTransformer(str(path), trust_remote_code=True, **kwargs)


class SentenceTransformerEncoder:
    """A sentence-transformers model as an :class:`~embeddings.encoders.base.Encoder` (L2-normalised float32 vectors)."""

    def __init__(
        self,
        name_or_path: str | os.PathLike,
        *,
        device: str = "cpu",
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        max_seq_length: int | None = None,
        offline: bool = False,
    ) -> None:
        name = os.fspath(name_or_path)
        path = Path(name).expanduser()
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        if path.exists():
            if not path.is_dir():
                raise EncoderNotFoundError(f"encoder path {path} is a file, expected a model directory")
            path = path.resolve()
            try:
                self.model = _load_local(path, device)
            except EncoderNotFoundError:
                raise
            except Exception as exc:  # noqa: BLE001 - corrupt weights raise library-specific errors
                first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
                raise EncoderNotFoundError(
                    f"encoder at {path} could not be loaded ({type(exc).__name__}: {first}); "
                    "the model files are damaged or incomplete"
                ) from None
            self.source = str(path)
            self.model_id = f"{path.name}@{model_dir_hash(path)}"
        elif _looks_like_hub_name(name):
            self.model = self._load_hub(name, device, offline)
            self.source = name
            revision = getattr(getattr(self.model, "model_card_data", None), "base_model_revision", None)
            self.model_id = f"{name}@{revision[:12]}" if revision else name
        else:
            raise EncoderNotFoundError(
                f"encoder not found: {name!r} is neither a model directory nor a model name"
            )
        if max_seq_length is not None and hasattr(self.model, "max_seq_length") and not self.is_static:
            self.model.max_seq_length = int(max_seq_length)
        if query_prompt or document_prompt:
            self.model_id += (
                "+prompts:"
                + hashlib.sha256(f"{query_prompt or ''}\0{document_prompt or ''}".encode()).hexdigest()[:8]
            )
        get_dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if not dim:
            raise EncoderNotFoundError(f"{name}: the model does not report an embedding dimension")
        self.dimension = int(dim)

    @staticmethod
    def _load_hub(name: str, device: str, offline: bool):
        from sentence_transformers import SentenceTransformer

        try:
            return SentenceTransformer(name, device=device, local_files_only=offline)
        except (OSError, ValueError) as exc:
            where = "the local Hugging Face cache (offline)" if offline else "the Hugging Face Hub"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EncoderNotFoundError(f"encoder {name!r} could not be loaded from {where}: {first}") from exc

    @property
    def is_static(self) -> bool:
        from embeddings.encoders.static_zh import StaticZhEmbedding

        return len(self.model) > 0 and isinstance(self.model[0], StaticZhEmbedding)

    def _encode(self, method, texts: Sequence[str], prompt: str | None, batch_size: int, progress: bool):
        texts = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in texts]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.is_static:
            batch_size = max(batch_size, _STATIC_BATCH)
        kwargs: dict[str, Any] = {
            "batch_size": batch_size,
            "show_progress_bar": progress,
            "normalize_embeddings": True,
            "convert_to_numpy": True,
        }
        if prompt is not None:
            kwargs["prompt"] = prompt
        out = method(texts, **kwargs)
        return np.ascontiguousarray(out, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        return self._encode(self.model.encode_query, texts, self.query_prompt, batch_size, False)

    def encode_documents(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        return self._encode(
            self.model.encode_document, texts, self.document_prompt, batch_size, show_progress
        )

    def __repr__(self) -> str:
        return f"SentenceTransformerEncoder({self.model_id!r}, dimension={self.dimension})"


def load_encoder(name_or_path: str | os.PathLike, *, offline: bool = False, **kwargs: Any) -> Encoder:
    """An :class:`~embeddings.encoders.base.Encoder` for a local sentence-transformers directory or a Hub model name.

    ``offline`` looks a Hub name up in the local cache only (local directories never go online). Other keyword
    arguments go to :class:`SentenceTransformerEncoder` (device, prompts, max_seq_length).
    Raises :class:`EncoderNotFoundError` when nothing loadable is found.
    """
    if name_or_path is None or not os.fspath(name_or_path).strip():
        raise EncoderNotFoundError("no encoder given (empty name or path)")
    return SentenceTransformerEncoder(os.fspath(name_or_path).strip(), offline=offline, **kwargs)
