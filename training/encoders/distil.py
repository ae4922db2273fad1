"""A static student distilled from a sentence-transformers teacher (model2vec-style), for the project's tokens.

The student is :class:`embeddings.encoders.static_zh.StaticZhEmbedding`: a sum of word vectors over the tokens
:func:`embeddings.text.tokenize` gives (jieba words, stemmed English words). Its rows come from the teacher:

1. **vocabulary**: the most frequent Chinese words of jieba's dictionary (MIT) and every Chinese character in
   them, and the most frequent whole English words of the teacher's own tokenizer (SentencePiece pieces
   ``▁word``, ranked by the unigram model's log-probability; words without scores are taken in vocabulary
   order). English surface words are grouped by the stem the project's tokenizer gives them;
2. **one teacher pass per surface word** (the word alone, no prompt), averaged per stem;
3. **PCA** to ``dim`` dimensions (centred), unit rows;
4. **SIF weights**: each row is scaled by ``a / (a + p)``, ``p`` the word's unigram probability within its
   language, so frequent, uninformative words weigh little in the sum.

No corpus is needed: a fresh install builds the default from the packaged teacher alone. Because the teacher is
multilingual, an English word's row lands near its Chinese translation's, which is what lets an English need
find a Chinese research result. Domain adaptation on a park's own records is a separate, optional step
(:mod:`training.encoders.loop` starting from these rows).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embeddings.text import STOPWORDS, normalize, stem

__all__ = ["DistilRecipe", "StudentVocabulary", "distil_static_student", "student_vocabulary"]

_CJK_WORD = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+$")
_LATIN_PIECE = re.compile(r"^\u2581([a-z][a-z0-9\-]{1,30})$")
MANIFEST = "training_manifest.json"


@dataclass(frozen=True)
class DistilRecipe:
    """How the student is built. ``name`` identifies the recipe (calibrations are fitted per recipe)."""

    name: str = "e5-small-static-1"
    zh_words: int = 80_000
    en_words: int = 40_000
    dim: int = 256
    sif: float = 1e-4
    batch_size: int = 512
    pca_sample: int = 60_000
    seed: int = 0


@dataclass
class StudentVocabulary:
    """Surface words to encode, the row key each belongs to, and each key's unigram probability."""

    surfaces: list[str]
    keys: list[str]  # per surface
    probability: dict[str, float]  # per key, within its language


def _jieba_dictionary() -> Path:
    import jieba

    return Path(jieba.__file__).with_name("dict.txt")


def _chinese_words(limit: int) -> dict[str, float]:
    counts: dict[str, float] = {}
    with _jieba_dictionary().open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            word = normalize(parts[0])
            if _CJK_WORD.match(word) and word not in STOPWORDS:
                counts[word] = counts.get(word, 0.0) + float(parts[1])
    top = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:limit])
    for word, freq in list(counts.items()):
        for ch in word:
            if ch not in top and ch not in STOPWORDS:
                top[ch] = top.get(ch, 0.0) + freq  # characters of every word: the fallback of unseen words
    return top


def _teacher_pieces(tokenizer) -> list[tuple[str, float]]:
    """(piece, log-probability) of a unigram tokenizer; pieces in vocabulary order with a falling score
    otherwise."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        model = json.loads(backend.to_str()).get("model", {})
        if model.get("type") == "Unigram":
            return [(p, float(s)) for p, s in model["vocab"]]
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    return [(p, -math.log(i + 2)) for i, (p, _) in enumerate(vocab)]


def _english_words(tokenizer, limit: int) -> dict[str, float]:
    words: dict[str, float] = {}
    for piece, score in _teacher_pieces(tokenizer):
        m = _LATIN_PIECE.match(piece)
        if m and m.group(1) not in STOPWORDS:
            words.setdefault(m.group(1), math.exp(score))
    return dict(sorted(words.items(), key=lambda kv: -kv[1])[:limit])


def student_vocabulary(tokenizer, recipe: DistilRecipe) -> StudentVocabulary:
    """The words the student knows: see the module docstring."""
    surfaces: list[str] = []
    keys: list[str] = []
    probability: dict[str, float] = {}
    for words, keyer in (
        (_chinese_words(recipe.zh_words), str),
        (_english_words(tokenizer, recipe.en_words), stem),
    ):
        total = sum(words.values()) or 1.0
        for word, freq in words.items():
            key = keyer(word)
            if not key or key in STOPWORDS:
                continue
            surfaces.append(word)
            keys.append(key)
            probability[key] = probability.get(key, 0.0) + freq / total
    return StudentVocabulary(surfaces, keys, probability)


def _encode_surfaces(model, surfaces: Sequence[str], batch_size: int,
                     progress: Callable[[int, int], None] | None) -> np.ndarray:  # fmt: skip
    out = []
    for start in range(0, len(surfaces), batch_size * 8):
        chunk = list(surfaces[start : start + batch_size * 8])
        out.append(
            model.encode(chunk, batch_size=batch_size, convert_to_numpy=True,
                         normalize_embeddings=False, show_progress_bar=False).astype(np.float32)
        )  # fmt: skip
        if progress is not None:
            progress(min(start + len(chunk), len(surfaces)), len(surfaces))
    return np.concatenate(out) if out else np.zeros((0, 1), np.float32)


def student_matrix(
    vectors: np.ndarray, vocab: StudentVocabulary, recipe: DistilRecipe
) -> tuple[list[str], np.ndarray]:
    """Rows per key: the mean of its surface words' vectors, centred, PCA-projected, unit, SIF-weighted."""
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(vocab.keys):
        groups.setdefault(key, []).append(i)
    keys = list(groups)
    mat = np.stack([vectors[groups[k]].mean(axis=0) for k in keys]).astype(np.float64)
    # centred per language: a multilingual teacher puts each language's words around a mean of its own, and
    # that offset, left in, would make an English query closest to whatever text has English in it
    latin = np.array([k.isascii() for k in keys])
    for part in (latin, ~latin):
        if part.any():
            mat[part] -= mat[part].mean(axis=0, keepdims=True)
    rng = np.random.default_rng(recipe.seed)
    sample = mat[rng.choice(len(mat), min(len(mat), recipe.pca_sample), replace=False)]
    _, _, vt = np.linalg.svd(sample, full_matrices=False)
    k = min(recipe.dim, vt.shape[0])
    mat = mat @ vt[:k].T
    if k < recipe.dim:
        mat = np.hstack([mat, np.zeros((len(keys), recipe.dim - k))])
    mat /= np.linalg.norm(mat, axis=1, keepdims=True) + 1e-12
    p = np.array([vocab.probability[k] for k in keys])
    mat *= (recipe.sif / (recipe.sif + p))[:, None]
    return keys, mat.astype(np.float32)


def distil_static_student(
    teacher,
    out_dir: str | os.PathLike,
    recipe: DistilRecipe | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Build the student from ``teacher`` (a loaded :class:`SentenceTransformerEncoder` or a sentence-transformers
    model) and save it at ``out_dir`` (built beside it, then renamed into place). Returns the path."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize

    from embeddings.encoders.static_zh import StaticZhEmbedding

    recipe = recipe or DistilRecipe()
    model = getattr(teacher, "model", teacher)
    started = time.time()
    vocab = student_vocabulary(model.tokenizer, recipe)
    vectors = _encode_surfaces(model, vocab.surfaces, recipe.batch_size, progress)
    keys, matrix = student_matrix(vectors, vocab, recipe)
    out = Path(out_dir)
    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    module = StaticZhEmbedding(keys, recipe.dim, embedding_weights=matrix)
    SentenceTransformer(modules=[module, Normalize()]).save(str(staging))
    manifest = {
        "kind": "static student distilled from a sentence-transformers teacher",
        "recipe": asdict(recipe),
        "teacher": getattr(teacher, "model_id", type(model).__name__),
        "rows": len(keys),
        "surface_words": len(vocab.surfaces),
        "seconds": round(time.time() - started, 1),
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return out
