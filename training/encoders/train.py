"""Train the embedded default encoder: a static word-bag model (:mod:`embeddings.encoders.static_zh`) on CPU.

Recipe (see ``docs/encoders.md`` for what was measured):

1. the records' titles, keywords and abstracts are tokenised once with :func:`embeddings.text.tokenize`
   (abstracts sentence by sentence and clause by clause, so that training pairs can be re-cut every epoch
   without tokenising again);
2. the vocabulary is every word seen ``min_count`` times or more, plus every Chinese character seen;
3. vectors start random (or from an SVD of a PPMI co-occurrence matrix) and are trained with
   sentence-transformers' ``MultipleNegativesRankingLoss`` (in-batch negatives, optionally one BM25 hard
   negative per pair) on self-supervised pairs from :mod:`training.data.pairs`: title -> abstract,
   keywords -> abstract, problem clause -> rest of the abstract, and inverse cloze (a sentence or clause ->
   the rest). Each epoch draws one pair per record, so a batch never holds two pairs of the same record;
4. optionally, supervised pairs given by the caller (``pairs=[(query, positive, negative or None), ...]``, e.g.
   accepted and rejected matches from feedback, or the training part of a labelled set) are mixed into the
   same batches, ``pair_repeats`` times per epoch: every query is ranked against its positive, every other
   positive and negative in the batch (in-batch negatives) and its own hard negative (the given one, else a
   BM25-mined record). A batch never holds a supervised pair and the record its positive is taken from.

The output directory loads with :func:`embeddings.encoders.sentence.load_encoder` and carries a
``training_manifest.json`` (data size, parameters, library versions, time).
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from embeddings.encoders.static_zh import StaticZhEmbedding, is_cjk_word, text_tokens
from training.data.pairs import PAIR_KINDS, Bm25, record_views, sample_kind, split_clauses

logger = logging.getLogger(__name__)

__all__ = ["StaticRecipe", "train_static_encoder", "DEFAULT_RECIPE"]


@dataclass
class StaticRecipe:
    """Everything that shapes the trained model (written to the manifest)."""

    dim: int = 256
    epochs: int = 20
    batch_size: int = 512
    lr: float = 0.003
    warmup: float = 0.05
    weight_decay: float = 0.0
    scale: float = 20.0  # MNRL inverse temperature
    symmetric: bool = False  # also rank queries for each document (doc_to_query)
    hard_negatives: bool = False  # one BM25-mined negative document per pair
    hard_negative_depth: int = 10
    min_count: int = 2
    max_vocab: int = 300_000
    num_buckets: int = 0
    subchars: bool = False
    init: str = "random"  # row directions: "random" | "svd" (of a PPMI co-occurrence matrix)
    init_norm: str = "idf"  # row norms: "const" | "idf" (idf ** idf_power)
    idf_power: float = 1.0
    pair_kinds: tuple[str, ...] = PAIR_KINDS
    kind_weights: dict[str, float] = field(
        default_factory=lambda: {"title": 1.0, "keywords": 1.0, "problem": 1.0, "ict": 1.0}
    )
    passes_per_epoch: int = 1  # pairs drawn per record per epoch
    ict_clause_prob: float = 0.5  # inverse cloze: a comma clause instead of a whole sentence
    ict_keep_prob: float = 0.0  # inverse cloze: keep the sentence in the document this often
    max_doc_tokens: int = 512
    optimizer: str = "adam"  # "adam" (dense) | "sparse_adam" (only rows seen in the batch are updated)
    teacher: str | None = None  # sentence-transformers model whose word vectors seed the latin (English) rows
    teacher_words: int = (
        30_000  # at most this many words from the teacher's own vocabulary, besides the corpus'
    )
    train: str = "full"  # "full": vectors are trained | "weights": only a per-token weight is trained
    threads: int = 1  # torch threads while training: the work is memory-bound, more threads mostly contend
    # supervised pairs (``pairs=`` of train_static_encoder): how often each is drawn per epoch, and where the
    # hard negative of a pair given without one comes from: "bm25" (a top BM25 record for the query that is
    # not its positive) | "random" (any record)
    pair_repeats: int = 1
    pair_negatives: str = "bm25"
    seed: int = 42


DEFAULT_RECIPE = StaticRecipe()


# ---------------------------------------------------------------------------------------------- records
@dataclass
class _Tok:
    """A record as token lists: abstract -> sentences -> clauses -> tokens."""

    id: str
    title: list[str]
    keywords: list[str]
    sentences: list[list[list[str]]]
    problem: tuple[list[str], list[str]] | None


def _tokenize_record(rec: Mapping) -> _Tok:
    v = record_views(rec)
    sentences = []
    for s in v.sentences:
        clauses = split_clauses(s) or [s]
        toks = [text_tokens(c) for c in clauses]
        toks = [t for t in toks if t]
        if toks:
            sentences.append(toks)
    problem = None
    if v.problem:
        clause, rest = v.problem
        q, d = text_tokens(clause), text_tokens(rest)
        if q and d:
            problem = (q, d)
    return _Tok(v.id, text_tokens(v.title), text_tokens(v.keywords), sentences, problem)


_TOKEN_CACHE: dict[tuple, _Tok] = {}
_TOKEN_CACHE_MAX = 50_000


def _record_key(rec: Mapping) -> tuple:
    return (rec["id"], rec["title"], rec["text"], tuple(rec["keywords"]))


def _tokenize_all(records: Sequence[Mapping], show_progress: bool) -> list[_Tok]:
    """Tokenised records; kept in a process-wide cache so that retraining on the same records skips jieba."""
    from tqdm.auto import tqdm

    out = []
    it = tqdm(records, desc="tokenising", unit="rec", disable=not show_progress, leave=False)
    for r in it:
        key = _record_key(r)
        tok = _TOKEN_CACHE.get(key)
        if tok is None:
            tok = _tokenize_record(r)
            if len(_TOKEN_CACHE) >= _TOKEN_CACHE_MAX:
                _TOKEN_CACHE.clear()
            _TOKEN_CACHE[key] = tok
        out.append(tok)
    return out


def _build_vocab(toks: Sequence[_Tok], min_count: int, max_vocab: int) -> list[str]:
    counts: Counter = Counter()
    chars: Counter = Counter()
    for t in toks:
        seqs = [t.title, t.keywords, *(c for s in t.sentences for c in s)]
        for seq in seqs:
            counts.update(seq)
    for w, c in counts.items():
        if is_cjk_word(w):
            for ch in w:
                chars[ch] += c
    words = [w for w, c in counts.most_common() if c >= min_count and not (len(w) == 1 and is_cjk_word(w))]
    words = [w for w in words[:max_vocab] if w not in chars]
    # every Chinese character seen is in the vocabulary: the fallback for unseen words
    vocab = sorted(chars, key=lambda ch: -chars[ch]) + words
    return vocab


# ---------------------------------------------------------------------------------------------- init
def _svd_directions(n: int, docs: Sequence[Sequence[int]], dim: int, seed: int) -> np.ndarray:
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


def _initial_weights(n: int, docs: Sequence[Sequence[int]], r: StaticRecipe) -> torch.Tensor:
    """Row directions (random or SVD) times a row norm (constant or idf ** idf_power).

    With idf norms the untrained model is already a random projection of a tf-idf bag of words: training then
    adds what co-occurrence teaches on top of exact matching instead of having to learn matching from scratch."""
    rng = np.random.default_rng(r.seed)
    if r.init == "svd":
        vec = _svd_directions(n, docs, r.dim, r.seed)
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


def _teacher_word_vectors(
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


# ---------------------------------------------------------------------------------------------- pairs
class _PairBuilder:
    def __init__(self, module: StaticZhEmbedding, toks: Sequence[_Tok], recipe: StaticRecipe):
        self.r = recipe
        ids = module.token_ids
        self.title = [ids(t.title) for t in toks]
        self.keywords = [ids(t.keywords) for t in toks]
        self.sent = [[[ids(c) for c in s] for s in t.sentences] for t in toks]
        self.problem = [(ids(t.problem[0]), ids(t.problem[1])) if t.problem else None for t in toks]
        self.abstract = [[i for s in ss for c in s for i in c] for ss in self.sent]
        self.kinds: list[list[str]] = []
        for i in range(len(toks)):
            k = []
            if "title" in recipe.pair_kinds and self.title[i] and self.abstract[i]:
                k.append("title")
            if "keywords" in recipe.pair_kinds and self.keywords[i] and self.abstract[i]:
                k.append("keywords")
            if "problem" in recipe.pair_kinds and self.problem[i]:
                k.append("problem")
            if "ict" in recipe.pair_kinds and (
                len(self.sent[i]) >= 2 or (self.sent[i] and len(self.sent[i][0]) >= 2)
            ):
                k.append("ict")
            self.kinds.append(k)

    def doc(self, i: int) -> list[int]:
        return (self.title[i] + self.abstract[i])[: self.r.max_doc_tokens]

    def pair(self, i: int, kind: str, rng: random.Random) -> tuple[list[int], list[int]]:
        m = self.r.max_doc_tokens
        if kind == "title":
            return self.title[i], self.abstract[i][:m]
        if kind == "keywords":
            return self.keywords[i], self.doc(i)
        if kind == "problem":
            q, rest = self.problem[i]
            return q, (self.title[i] + rest)[:m]
        # inverse cloze
        sents = self.sent[i]
        whole = [(si, None) for si in range(len(sents))] if len(sents) >= 2 else []
        parts = [(si, ci) for si, s in enumerate(sents) for ci in range(len(s))]
        if len(parts) < 2:
            parts = []
        candidates = parts if (parts and (rng.random() < self.r.ict_clause_prob or not whole)) else whole
        si, ci = rng.choice(candidates)
        keep = rng.random() < self.r.ict_keep_prob
        if ci is None:
            q = [t for c in sents[si] for t in c]
            rest = [t for j, s in enumerate(sents) if keep or j != si for c in s for t in c]
        else:
            q = sents[si][ci]
            rest = [
                t
                for j, s in enumerate(sents)
                for k, c in enumerate(s)
                if keep or (j, k) != (si, ci)
                for t in c
            ]
        return q, (self.title[i] + rest)[:m]


def _mine_negatives(builder: _PairBuilder, toks: Sequence[_Tok], depth: int) -> list[list[int]]:
    """For each record, the records BM25 ranks closest to its title + abstract (itself left out)."""
    docs = [t.title + [w for s in t.sentences for c in s for w in c] for t in toks]
    bm25 = Bm25(docs)
    queries = [d[:64] for d in docs]
    top = bm25.top_k(queries, depth + 1)
    return [[int(j) for j in row if j >= 0 and j != i][:depth] for i, row in enumerate(top)]


# ---------------------------------------------------------------------------------------------- supervised
_TEXT_KEY = re.compile(r"[\s。．.，,：:；;]+")


def _text_key(text: str) -> str:
    return _TEXT_KEY.sub("", text or "")


def _normalise_pairs(pairs: Iterable[Sequence[str | None]] | None) -> list[tuple[str, str, str | None]]:
    out = []
    for p in pairs or ():
        if len(p) not in (2, 3):
            raise ValueError("a supervised pair is (query, positive) or (query, positive, negative)")
        q, pos = str(p[0] or ""), str(p[1] or "")
        neg = str(p[2]) if len(p) == 3 and p[2] else None
        if q.strip() and pos.strip():
            out.append((q, pos, neg))
    return out


def _dedup_batches(items: Sequence[int], key, batch_size: int) -> list[list[int]]:
    """Consecutive batches of ``items`` in order, an item whose key is already in the batch moved to a later one."""
    batches: list[list[int]] = []
    queue = list(items)
    while queue:
        batch: list[int] = []
        seen: set = set()
        rest: list[int] = []
        for n, it in enumerate(queue):
            if len(batch) == batch_size:
                rest.extend(queue[n:])
                break
            k = key(it)
            if k in seen:
                rest.append(it)
            else:
                batch.append(it)
                seen.add(k)
        batches.append(batch)
        queue = rest
    return batches


class _Supervised:
    """Supervised (query, positive, negative) pairs as token ids, their hard negatives and their batching.

    A pair's positive is matched to the record it was taken from (same text), so that the record's own pair
    and the supervised pair never share a batch (each would be a false negative of the other)."""

    def __init__(self, module, builder: _PairBuilder, toks, used, pair_toks, r: StaticRecipe):
        self.r = r
        self.builder = builder
        m = r.max_doc_tokens
        ids = module.token_ids
        self.q = [ids(q) or [0] for q, _, _, _ in pair_toks]  # token lists are non-empty, so are id lists
        self.p = [(ids(p) or [0])[:m] for _, p, _, _ in pair_toks]
        self.n = [(ids(n) or [0])[:m] if n else None for _, _, n, _ in pair_toks]
        by_text: dict[str, int] = {}
        for i, rec in enumerate(used):
            by_text.setdefault(_text_key(rec["text"]), i)
            by_text.setdefault(_text_key(rec["title"] + rec["text"]), i)
        self.source: list[int | None] = [by_text.get(_text_key(text)) for _, _, _, text in pair_toks]
        # a positive that is a record's title and text followed by more (tags, details) is that record too
        full = [(_text_key(rec["title"] + rec["text"]), i) for i, rec in enumerate(used)]
        for j, (_, _, _, text) in enumerate(pair_toks):
            if self.source[j] is None:
                key = _text_key(text)
                self.source[j] = next((i for k, i in full if len(k) >= 8 and key.startswith(k)), None)
        self.n_records = len(toks)
        self.mined: list[list[int]] = [[] for _ in pair_toks]
        if r.pair_negatives == "bm25" and any(n is None for n in self.n):
            docs = [t.title + [w for s in t.sentences for c in s for w in c] for t in toks]
            bm25 = Bm25(docs)
            want = [j for j, n in enumerate(self.n) if n is None]
            top = bm25.top_k([pair_toks[j][0] for j in want], r.hard_negative_depth + 1)
            for j, row in zip(want, top, strict=True):
                mined = [int(i) for i in row if i >= 0 and i != self.source[j]]
                self.mined[j] = mined[: r.hard_negative_depth]

    def key(self, item: int):
        if item >= 0:
            return item
        src = self.source[-1 - item]
        return src if src is not None else ("pair", -1 - item)

    def epoch_batches(self, trainable: Sequence[int], rng: random.Random) -> list[list[int]]:
        items = [i for _ in range(self.r.passes_per_epoch) for i in trainable]
        items += [-1 - j for _ in range(self.r.pair_repeats) for j in range(len(self.q))]
        rng.shuffle(items)
        return _dedup_batches(items, self.key, self.r.batch_size)

    def records_in(self, batch: Sequence[int]) -> set[int]:
        out = {i for i in batch if i >= 0}
        out.update(self.source[-1 - i] for i in batch if i < 0 and self.source[-1 - i] is not None)
        return out

    def random_doc(self, in_batch: set[int], rng: random.Random) -> list[int]:
        for _ in range(10):
            i = rng.randrange(self.n_records)
            if i not in in_batch:
                break
        return self.builder.doc(i) or [0]

    def triplet(self, j: int, in_batch: set[int], rng: random.Random):
        if self.n[j]:
            neg = self.n[j]
        else:
            cands = [i for i in self.mined[j] if i not in in_batch] or self.mined[j]
            neg = self.builder.doc(rng.choice(cands)) if cands else None
            if not neg:
                return self.q[j], self.p[j], self.random_doc(in_batch | {self.source[j]}, rng)
        return self.q[j], self.p[j], neg

    def summary(self) -> dict:
        return {
            "used": len(self.q),
            "with_given_negative": sum(1 for n in self.n if n),
            "matched_to_a_record": sum(1 for s in self.source if s is not None),
            "negatives_for_the_rest": self.r.pair_negatives,
            "repeats_per_epoch": self.r.pair_repeats,
        }


# ---------------------------------------------------------------------------------------------- main
def _library_versions() -> dict[str, str]:
    import jieba
    import sentence_transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "numpy": np.__version__,
        "jieba": getattr(jieba, "__version__", "?"),
    }


def _normalise_record(rec: Mapping) -> dict:
    return {
        "id": str(rec.get("id", "")),
        "title": rec.get("title") or "",
        "text": rec.get("text") or rec.get("abstract") or "",
        "keywords": rec.get("keywords") or [],
    }


def train_static_encoder(
    records: Iterable[Mapping],
    out_dir: str | os.PathLike,
    *,
    dim: int = 256,
    epochs: int | None = None,
    batch_size: int | None = None,
    exclude_ids: Iterable[str] = (),
    seed: int = 42,
    show_progress: bool = True,
    recipe: StaticRecipe | None = None,
    pairs: Iterable[Sequence[str | None]] | None = None,
    **overrides,
) -> Path:
    """Train a static encoder on ``records`` (dicts with id, title, text, keywords) and save it to ``out_dir``.

    ``exclude_ids`` are dropped before anything is learnt from them (vocabulary included): pass every document
    id an evaluation judges. ``pairs`` are supervised ``(query, positive, hard negative or None)`` texts trained
    together with the records' own pairs (see the module docstring); pairs with an empty query or positive are
    dropped. ``recipe`` / ``overrides`` set the other knobs of :class:`StaticRecipe`.
    Returns the output directory.
    """
    started = time.time()
    r = StaticRecipe(**asdict(recipe)) if recipe else StaticRecipe()
    known = {f.name for f in fields(StaticRecipe)}
    bad = set(overrides) - known
    if bad:
        raise TypeError(f"unknown recipe settings: {sorted(bad)}")
    for k, v in overrides.items():
        setattr(r, k, v)
    r.dim, r.seed = dim, seed
    if epochs is not None:
        r.epochs = epochs
    if batch_size is not None:
        r.batch_size = batch_size
    r.pair_kinds = tuple(r.pair_kinds)

    excluded = {str(x) for x in exclude_ids}
    all_records = [_normalise_record(x) for x in records]
    used = [x for x in all_records if x["id"] not in excluded and (x["text"] or x["title"])]
    if len(used) < 2:
        raise ValueError(f"need at least 2 records to train on, got {len(used)} after exclusions")
    supervised = _normalise_pairs(pairs)
    if r.pair_negatives not in ("bm25", "random"):
        raise ValueError(f"unknown pair_negatives {r.pair_negatives!r} (bm25, random)")
    if r.pair_repeats < 0:
        raise ValueError("pair_repeats must be 0 or more")

    old_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, r.threads))
    try:
        return _train(r, all_records, used, out_dir, show_progress, started, supervised)
    finally:
        torch.set_num_threads(old_threads)


def _train(
    r: StaticRecipe, all_records, used, out_dir, show_progress: bool, started: float, supervised=()
) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from tqdm.auto import tqdm

    seed = r.seed
    rng = random.Random(seed)
    torch.manual_seed(seed)
    np.random.seed(seed)

    t0 = time.time()
    toks = _tokenize_all(used, show_progress)
    # (query tokens, positive tokens, negative tokens or None, positive text)
    pair_toks = [(text_tokens(q), text_tokens(p), text_tokens(n) if n else None, p) for q, p, n in supervised]
    pair_toks = [x for x in pair_toks if x[0] and x[1]]
    t_tok = time.time() - t0
    # the supervised texts count towards the vocabulary (a need's words get rows), not towards idf
    vocab = _build_vocab(
        list(toks) + [_Tok("", q, n or [], [[p]], None) for q, p, n, _ in pair_toks], r.min_count, r.max_vocab
    )
    teacher_rows: dict[str, np.ndarray] = {}
    t_teacher = 0.0
    if r.teacher:
        t1 = time.time()
        teacher_rows = _teacher_word_vectors(r.teacher, vocab, r.teacher_words, r.dim)
        have = set(vocab)
        vocab = vocab + sorted(w for w in teacher_rows if w not in have)
        t_teacher = time.time() - t1
    module = StaticZhEmbedding(vocab, r.dim, num_buckets=r.num_buckets, subchars=r.subchars)
    builder = _PairBuilder(module, toks, r)
    trainable = [i for i, k in enumerate(builder.kinds) if k]
    if not trainable and not supervised:
        raise ValueError("no training pairs could be built from the records (empty texts?)")

    docs = [builder.title[i] + builder.keywords[i] + builder.abstract[i] for i in range(len(toks))]
    svd_docs = docs
    if r.init == "svd":  # co-occurrence within sentences (and titles), not whole abstracts
        svd_docs = [[t for c in s for t in c] for ss in builder.sent for s in ss] + [
            d for d in builder.title if d
        ]
    init = _initial_weights(module.num_embeddings, svd_docs if r.init == "svd" else docs, r)
    if r.init == "svd" and r.init_norm == "idf":  # idf from documents, directions from sentences
        init = _initial_weights(
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
    with torch.no_grad():
        module.embedding.weight.copy_(init)

    negatives = _mine_negatives(builder, toks, r.hard_negative_depth) if r.hard_negatives else None
    sup = _Supervised(module, builder, toks, used, pair_toks, r) if pair_toks else None
    if sup is None and not trainable:
        raise ValueError("no training pairs could be built from the records (empty texts?)")

    model = SentenceTransformer(modules=[module], device="cpu")
    directions = ("query_to_doc", "doc_to_query") if r.symmetric else ("query_to_doc",)
    loss_fn = MultipleNegativesRankingLoss(
        model,
        scale=r.scale,
        directions=directions,
        partition_mode="per_direction" if r.symmetric else "joint",
    )
    # "weights": the row directions stay as initialised, one log-scale per row is learnt (a learned term weight)
    log_scale = None
    if r.train == "weights":
        module.embedding.weight.requires_grad_(False)
        log_scale = torch.nn.Parameter(torch.zeros(module.num_embeddings))
        params = [log_scale]
    elif r.train == "full":
        params = list(module.parameters())
    else:
        raise ValueError(f"unknown train mode {r.train!r} (full, weights)")
    if r.optimizer == "sparse_adam" and log_scale is None:
        module.embedding.sparse = True
        optimizer = torch.optim.SparseAdam(params, lr=r.lr)
    elif r.optimizer in ("adam", "sparse_adam"):
        optimizer = torch.optim.Adam(params, lr=r.lr, weight_decay=r.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {r.optimizer!r} (adam, sparse_adam)")
    if sup is None:
        steps_per_epoch = math.ceil(len(trainable) * r.passes_per_epoch / r.batch_size)
        total_steps = max(1, steps_per_epoch * r.epochs)
        planned = None
    else:  # mixed batches are planned up front: de-duplication can add a batch or two per epoch
        planned = [sup.epoch_batches(trainable, rng) for _ in range(r.epochs)]
        total_steps = max(1, sum(len(bs) for bs in planned))
    warmup = max(1, int(total_steps * r.warmup))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    kind_counts: Counter = Counter()
    losses: list[float] = []
    model.train()
    bar = tqdm(total=total_steps, desc="training static encoder", unit="step", disable=not show_progress)
    step = 0
    for epoch in range(r.epochs):
        if planned is None:
            order = [i for _ in range(r.passes_per_epoch) for i in trainable]
            # passes are shuffled separately so one batch never holds a record twice
            chunks = [order[p * len(trainable) : (p + 1) * len(trainable)] for p in range(r.passes_per_epoch)]
            for c in chunks:
                rng.shuffle(c)
            order = [i for c in chunks for i in c]
            batches = [order[b : b + r.batch_size] for b in range(0, len(order), r.batch_size)]
        else:
            batches = planned[epoch]
        for batch in batches:
            if len(batch) < 2:
                continue
            qs, ps, ns = [], [], []
            in_batch = set(batch) if sup is None else sup.records_in(batch)
            for i in batch:
                if i < 0:  # a supervised pair (index -1 - j)
                    q, p, neg = sup.triplet(-1 - i, in_batch, rng)
                    kind_counts["supervised"] += 1
                    qs.append(q)
                    ps.append(p)
                    ns.append(neg)
                    continue
                kind = sample_kind(builder.kinds[i], r.kind_weights, rng)
                kind_counts[kind] += 1
                q, p = builder.pair(i, kind, rng)
                qs.append(q)
                ps.append(p)
                if negatives is not None:
                    cands = [j for j in negatives[i] if j not in in_batch] or negatives[i]
                    ns.append(builder.doc(rng.choice(cands)) if cands else builder.doc(rng.choice(trainable)))
                elif sup is not None:  # mixed batch: every row needs a negative; an extra random one
                    ns.append(sup.random_doc(in_batch, rng))
            use_neg = negatives is not None or sup is not None
            cols = [qs, ps] + ([ns] if use_neg else [])
            feats = StaticZhEmbedding.collate([x for col in cols for x in col])
            if log_scale is None:
                emb = module.embedding(feats["input_ids"], feats["offsets"])
            else:
                emb = module.embedding(
                    feats["input_ids"],
                    feats["offsets"],
                    per_sample_weights=log_scale.exp()[feats["input_ids"]],
                )
            n = len(batch)
            embeddings = [emb[k * n : (k + 1) * n] for k in range(len(cols))]
            loss = loss_fn.compute_loss_from_embeddings(embeddings, None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            losses.append(loss.item())
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.3f}")
    bar.close()
    module.embedding.sparse = False
    if log_scale is not None:  # fold the learnt weights into the rows: the saved model is a plain word-bag
        with torch.no_grad():
            module.embedding.weight.mul_(log_scale.exp()[:, None])
        module.embedding.weight.requires_grad_(True)
    model.eval()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out), create_model_card=False)
    elapsed = time.time() - started
    manifest = {
        "model": "static word-bag encoder (embeddings.encoders.static_zh.StaticZhEmbedding)",
        "created_unix": int(time.time()),
        "records_given": len(all_records),
        "records_excluded": len(all_records) - len(used),
        "records_used": len(used),
        "records_with_pairs": len(trainable),
        "supervised_pairs": sup.summary() if sup is not None else {"given": len(supervised), "used": 0},
        "pairs_drawn": dict(kind_counts),
        "pair_kinds_available": dict(Counter(k for ks in builder.kinds for k in ks)),
        "vocab_size": len(vocab),
        "num_embeddings": module.num_embeddings,
        "recipe": {**asdict(r), "pair_kinds": list(r.pair_kinds)},
        "steps": step,
        "final_loss": float(np.mean(losses[-20:])) if losses else None,
        "seconds_tokenising": round(t_tok, 2),
        "seconds_teacher": round(t_teacher, 2),
        "teacher_words": len(teacher_rows),
        "seconds_total": round(elapsed, 2),
        "cpu_threads": torch.get_num_threads(),
        "libraries": _library_versions(),
    }
    (out / "training_manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    logger.info("static encoder trained in %.1fs on %d records -> %s", elapsed, len(used), out)
    return out
