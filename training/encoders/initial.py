"""Initial word vectors of the static encoder: random or SVD (PPMI) directions, constant or idf norms, and
latin rows distilled from a sentence-transformers teacher."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import torch

from embeddings.encoders.static_zh import StaticZhEmbedding
from training.encoders.recipe import StaticRecipe
from training.encoders.record_pairs import PairBuilder

__all__ = ["initial_matrix", "initial_weights", "svd_directions", "teacher_word_vectors"]


def svd_directions(n: int, docs: Sequence[Sequence[int]], dim: int, seed: int) -> np.ndarray:
    """Unit word directions from a truncated SVD of the positive PMI matrix of in-sentence co-occurrence."""
    from scipy import sparse
    from sklearn.utils.extmath import randomized_svd

    rows = [
        np.full(len(u), i, dtype=np.int64)
        for i, u in enumerate(np.unique(np.asarray(d, dtype=np.int64)) for d in docs)
    ]
    cols = [np.unique(np.asarray(d, dtype=np.int64)) for d in docs]
    r, c = np.concatenate(rows), np.concatenate(cols)
    x = sparse.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(docs), n))
    co = (x.T @ x).tocoo()
    total = co.data.sum()
    marg = np.asarray(co.sum(axis=1)).ravel()
    pmi = np.log(co.data * total / (marg[co.row] * marg[co.col] + 1e-9) + 1e-12)
    keep = (pmi > 0) & (co.row != co.col)
    ppmi = sparse.csr_matrix((pmi[keep].astype(np.float32), (co.row[keep], co.col[keep])), shape=(n, n))
    u, s, _ = randomized_svd(ppmi, n_components=dim, random_state=seed, n_iter=4)
    vec = u * np.sqrt(s)[None, :]
    norms = np.linalg.norm(vec, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    empty = norms[:, 0] < 1e-8  # rows that never co-occur: random directions
    vec[empty] = rng.normal(size=(int(empty.sum()), dim))
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)


def initial_weights(n: int, docs: Sequence[Sequence[int]], r: StaticRecipe) -> torch.Tensor:
    """Row directions (random or SVD) times a row norm (constant or idf ** idf_power).

    With idf norms the untrained model is already a random projection of a tf-idf bag of words: training then
    adds what co-occurrence teaches on top of exact matching instead of having to learn matching from scratch."""
    rng = np.random.default_rng(r.seed)
    if r.init == "svd":
        vec = svd_directions(n, docs, r.dim, r.seed)
    elif r.init == "random":
        vec = rng.normal(size=(n, r.dim))
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    else:
        raise ValueError(f"unknown init {r.init!r} (random, svd)")
    if r.init_norm == "idf":
        df = np.zeros(n, dtype=np.float64)
        for d in docs:
            df[np.unique(np.asarray(d, dtype=np.int64))] += 1
        idf = np.log((len(docs) + 1) / (df + 1)) + 1.0
        scale = idf**r.idf_power
        vec *= (scale / scale.mean())[:, None]
    elif r.init_norm != "const":
        raise ValueError(f"unknown init_norm {r.init_norm!r} (const, idf)")
    return torch.from_numpy(vec.astype(np.float32))


_LATIN_WORD = re.compile(r"^[a-z][a-z\-]{1,30}$")


def teacher_word_vectors(
    teacher: str, vocab: Sequence[str], max_words: int, dim: int
) -> dict[str, np.ndarray]:
    """Unit vectors for latin tokens from a sentence-transformers teacher (model2vec-style distillation).

    Each surface word (the corpus' latin tokens, plus whole words of the teacher's tokenizer vocabulary) is
    encoded alone; words are grouped by the stem :func:`embeddings.text.tokenize` gives them, averaged, and
    projected to ``dim`` with PCA. Returns ``{stem: vector}``."""
    from embeddings.encoders.sentence import load_encoder
    from embeddings.text import STOPWORDS, stem

    enc = load_encoder(teacher)
    words: set[str] = {w for w in vocab if _LATIN_WORD.match(w)}
    tok = getattr(getattr(enc, "model", None), "tokenizer", None)
    extra: list[str] = []
    if tok is not None and hasattr(tok, "get_vocab"):
        extra = [
            w
            for w, _ in sorted(tok.get_vocab().items(), key=lambda x: x[1])
            if _LATIN_WORD.match(w) and len(w) > 2
        ]
    surface: dict[str, list[str]] = {}
    for w in list(words) + extra[:max_words]:
        if w in STOPWORDS:
            continue
        surface.setdefault(stem(w), []).append(w)
    if not surface:
        return {}
    flat = sorted({w for ws in surface.values() for w in ws})
    vecs = enc.encode_documents(flat, batch_size=256)
    index = {w: i for i, w in enumerate(flat)}
    stems = sorted(surface)
    mat = np.stack([vecs[[index[w] for w in surface[s]]].mean(axis=0) for s in stems]).astype(np.float64)
    mat -= mat.mean(axis=0, keepdims=True)
    k = min(dim, mat.shape[1], mat.shape[0])
    _, _, vt = np.linalg.svd(mat, full_matrices=False)
    proj = mat @ vt[:k].T
    if k < dim:
        proj = np.hstack([proj, np.zeros((len(stems), dim - k))])
    proj /= np.linalg.norm(proj, axis=1, keepdims=True) + 1e-12
    return {s: proj[i].astype(np.float32) for i, s in enumerate(stems)}


def model_word_vectors(model_dir: str, dim: int) -> dict[str, np.ndarray]:
    """Unit rows of a saved static model, by word (its directions seed training; see StaticRecipe.init_model)."""
    from embeddings.encoders.sentence import load_encoder

    enc = load_encoder(model_dir)
    module = enc.model[0] if len(enc.model) else None
    if not isinstance(module, StaticZhEmbedding):
        raise ValueError(f"{model_dir} is not a static model: init_model needs one")
    if module.embedding_dim != dim:
        raise ValueError(f"{model_dir} has dimension {module.embedding_dim}, the recipe asks for {dim}")
    weights = module.embedding.weight.detach().numpy()[: len(module.words)].astype(np.float32)
    weights /= np.linalg.norm(weights, axis=1, keepdims=True) + 1e-12
    return {w: weights[i] for i, w in enumerate(module.words)}


def initial_matrix(
    module: StaticZhEmbedding, builder: PairBuilder, r: StaticRecipe, teacher_rows: dict[str, np.ndarray]
) -> torch.Tensor:
    """The embedding matrix training starts from, for the recipe's init, init_norm and teacher."""
    n_records = len(builder.title)
    docs = [builder.title[i] + builder.keywords[i] + builder.abstract[i] for i in range(n_records)]
    if r.init == "svd":  # co-occurrence within sentences (and titles), not whole abstracts
        svd_docs = [[t for c in s for t in c] for ss in builder.sent for s in ss] + [
            d for d in builder.title if d
        ]
        init = initial_weights(module.num_embeddings, svd_docs, r)
    else:
        init = initial_weights(module.num_embeddings, docs, r)
    if r.init == "svd" and r.init_norm == "idf":  # idf from documents, directions from sentences
        init = initial_weights(
            module.num_embeddings, docs, StaticRecipe(**{**asdict(r), "init": "random"})
        ).norm(dim=1, keepdim=True) * torch.nn.functional.normalize(init, dim=1)
    if (
        teacher_rows
    ):  # latin words: the teacher's direction, the norm the init gave (idf, or max idf if unseen)
        norms = init.norm(dim=1)
        seen = np.zeros(module.num_embeddings, dtype=bool)
        for d in docs:
            seen[d] = True
        unseen_norm = float(norms[torch.from_numpy(seen)].max()) if seen.any() else 1.0
        for w, v in teacher_rows.items():
            i = module.vocab[w]
            n = float(norms[i]) if seen[i] else unseen_norm
            init[i] = torch.from_numpy(v) * n
    return init
