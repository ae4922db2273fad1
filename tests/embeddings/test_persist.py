"""Versioned, crash-safe directories: attachments saved and checksummed with their version, fallback, locks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embeddings.lexical.bm25 import LexicalIndex
from embeddings.persist import (
    IndexCorruptError,
    IndexManifest,
    atomic_write_json,
    list_versions,
    read_attachments,
    read_versioned,
    write_versioned,
)
from embeddings.vector.exact import ExactIndex
from embeddings.vector.faiss_index import FaissIndex
from embeddings.vector.load import load_index


def _manifest(count: int) -> IndexManifest:
    return IndexManifest(model_id="m", dimension=0, backend="test", kind="test", count=count, id_checksum="")


def _save(root: Path, payload: bytes, stamps: dict[str, float]) -> Path:
    def write(tmp: Path) -> None:
        (tmp / "payload.bin").write_bytes(payload)

    return write_versioned(root, write, _manifest(len(payload)), attachments={"stamps": stamps})


def _flip_last_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_attachments_are_saved_and_checksummed_with_their_version(tmp_path) -> None:
    path = _save(tmp_path, b"one", {"7": 1.5})
    assert (tmp_path / "CURRENT").read_text().strip() == path.name
    got, manifest = read_versioned(tmp_path)
    assert got == path and manifest.attachments == ["stamps"]
    assert set(manifest.files) == {"payload.bin", "stamps.json"}  # the attachment is checksummed too
    assert read_attachments(got, manifest) == {"stamps": {"7": 1.5}}


def test_a_damaged_version_falls_back_with_the_attachments_of_the_previous_one(tmp_path, caplog) -> None:
    first = _save(tmp_path, b"one", {"7": 1.0})
    newest = _save(tmp_path, b"two", {"7": 2.0})
    assert list_versions(tmp_path) == [newest.name, first.name]
    _flip_last_byte(newest / "payload.bin")
    with caplog.at_level("WARNING"):
        got, manifest = read_versioned(tmp_path)
    assert got == first and "unusable" in caplog.text and "fails its checksum" in caplog.text
    assert read_attachments(got, manifest) == {"stamps": {"7": 1.0}}
    # a damaged attachment alone is caught the same way
    _flip_last_byte(first / "stamps.json")
    with pytest.raises(IndexCorruptError):
        read_versioned(tmp_path)


def test_a_bad_attachment_name_leaves_the_current_version_alone(tmp_path) -> None:
    first = _save(tmp_path, b"one", {})

    def write(tmp: Path) -> None:
        (tmp / "payload.json").write_text("{}")

    for name in ("../escape", "payload"):  # a path, a clash with a payload file
        with pytest.raises(ValueError, match="attachment name"):
            write_versioned(tmp_path, write, _manifest(1), attachments={name: 1})
    assert read_versioned(tmp_path)[0] == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_atomic_write_json_replaces_the_whole_file(tmp_path) -> None:
    target = tmp_path / "sub" / "state.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"b": [1, 2]}, indent=2)
    assert json.loads(target.read_text()) == {"b": [1, 2]}
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]


@pytest.mark.parametrize("kind", ["exact", "faiss", "bm25"])
def test_every_index_carries_the_attachments_of_the_version_it_loaded(kind, tmp_path) -> None:
    ids = np.arange(5, dtype=np.int64)
    vecs = np.eye(5, 4, dtype=np.float32)
    if kind == "bm25":
        index: ExactIndex | FaissIndex | LexicalIndex = LexicalIndex()
        index.upsert_many(ids.tolist(), [["w"]] * 5)
    else:
        index = (
            ExactIndex(4, model_id="m") if kind == "exact" else FaissIndex(4, model_id="m", background=False)
        )
        index.upsert(ids, vecs + 0.1)
    assert index.attachments == {}
    index.save(str(tmp_path), attachments={"stamps": {"1": 1.0}})
    index.save(str(tmp_path), attachments={"stamps": {"1": 2.0}})
    if kind == "bm25":
        back = LexicalIndex.load(tmp_path)
    else:
        back = load_index(tmp_path, expected_model_id="m", expected_dimension=4)
    assert back.attachments == {"stamps": {"1": 2.0}}
    newest = tmp_path / (tmp_path / "CURRENT").read_text().strip()
    _flip_last_byte(newest / "stamps.json")
    if kind == "bm25":
        back = LexicalIndex.load(tmp_path)
    else:
        back = load_index(tmp_path, expected_model_id="m", expected_dimension=4)
    assert back.attachments == {"stamps": {"1": 1.0}}
