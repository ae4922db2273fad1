"""Self-supervised training pairs mined from the structure of research records, and BM25 hard negatives.

A record is a dict with ``id``, ``title``, ``text`` (abstract or description) and ``keywords`` (list of str).
No labels are used: every pair comes from one record's own fields.

Pair kinds
----------
``title``     title -> abstract
``keywords``  author keywords -> title + abstract
``problem``   the problem / purpose clause ("针对……问题", "为解决……", "为了提高……") -> the rest of the abstract,
              with the clause cut out (what a company's stated need looks like against the result that meets it)
``ict``       inverse cloze: one sentence or clause -> the rest of the abstract without it
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PAIR_KINDS",
    "Pair",
    "RecordViews",
    "Bm25",
    "extract_problem_clause",
    "find_problem_clause",
    "mine_pairs",
    "record_views",
    "split_clauses",
    "split_sentences",
]

PAIR_KINDS = ("title", "keywords", "problem", "ict")

# Sentence ends: Chinese and Western full stops, question/exclamation marks, semicolons, line breaks.
# An ASCII "." ends a sentence unless it sits between digits (3.5) or letters (e.g. "u.s.").
_SENT_SPLIT = re.compile(r"(?<=[。！？；!?;\n])|(?<=[.．])(?![0-9a-zA-Z])")
_CLAUSE_SPLIT = re.compile(r"(?<=[，,：:])")
_MIN_PIECE = 4

# Problem / purpose clauses. The marker starts the clause; the clause runs to the first problem word
# (问题, 需求, 不足 ...) or, failing that, to the end of the clause (comma) — never past a sentence end.
_MARKERS = (
    "针对",
    "为了解决",
    "为解决",
    "为了克服",
    "为克服",
    "为了改善",
    "为改善",
    "为了提高",
    "为提高",
    "为了实现",
    "为实现",
    "为了满足",
    "为满足",
    "为了弥补",
    "为弥补",
    "为了降低",
    "为降低",
    "为了减少",
    "为减少",
    "为了探讨",
    "为探讨",
    "为了研究",
    "旨在解决",
    "以解决",
)
_PROBLEM_WORDS = "问题|需求|要求|难题|不足|缺陷|缺点|瓶颈|挑战|困难|局限|弊端|矛盾|现状|难点"
_PROBLEM_RE = re.compile(
    r"(?P<marker>" + "|".join(_MARKERS) + r")"
    r"(?:(?P<clause>[^,，。！？；!?;.．]{2,80}?(?:" + _PROBLEM_WORDS + r")性?)[,，]?"
    r"|(?P<short>[^,，。！？；!?;.．]{4,60})[,，])"
)


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str
    kind: str
    record_id: str


@dataclass
class RecordViews:
    """The pieces of one record that training pairs are assembled from."""

    id: str
    title: str
    keywords: str
    sentences: list[str]
    problem: tuple[str, str] | None = None  # (clause, abstract without the clause)

    @property
    def abstract(self) -> str:
        return "".join(self.sentences)


def split_sentences(text: str) -> list[str]:
    """Sentences of an abstract; pieces shorter than a few characters are merged into their neighbour."""
    out: list[str] = []
    for piece in _SENT_SPLIT.split(text or ""):
        if not piece.strip():
            continue
        if out and len(piece.strip()) < _MIN_PIECE:
            out[-1] += piece
        else:
            out.append(piece)
    return out


def split_clauses(sentence: str) -> list[str]:
    return [c for c in _CLAUSE_SPLIT.split(sentence) if len(c.strip()) >= _MIN_PIECE]


def find_problem_clause(text: str) -> tuple[str, str, str, bool] | None:
    """``(marker, clause, rest, ends_with_problem_word)`` for the first problem/purpose clause, or None.

    The clause never crosses a comma: "针对A问题,提出B" gives ("针对", "A问题", "提出B", True); a purpose clause
    without a problem word ("为提高A,") is returned with the last flag False."""
    if not text:
        return None
    m = _PROBLEM_RE.search(text)
    if not m:
        return None
    problem = m.group("clause") is not None
    clause = (m.group("clause") if problem else m.group("short")).strip()
    if len(clause) < 4:
        return None
    rest = text[: m.start()] + text[m.end() :]
    if len(rest.strip()) < 10:
        return None
    return m.group("marker"), clause, rest, problem


def extract_problem_clause(text: str) -> tuple[str, str] | None:
    """``(clause, rest)``: the first problem/purpose clause and the text with it cut out, or None."""
    found = find_problem_clause(text)
    return (found[1], found[2]) if found else None


def _as_str(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def record_views(record: Mapping) -> RecordViews:
    keywords = record.get("keywords") or []
    if isinstance(keywords, str):
        keywords = [k for k in re.split(r"[;；,，、\s]+", keywords) if k]
    text = _as_str(record.get("text") or record.get("abstract"))
    return RecordViews(
        id=str(record.get("id", "")),
        title=_as_str(record.get("title")),
        keywords=" ".join(str(k).strip() for k in keywords if str(k).strip()),
        sentences=split_sentences(text),
        problem=extract_problem_clause(text),
    )


def mine_pairs(
    records: Iterable[Mapping],
    *,
    kinds: Sequence[str] = PAIR_KINDS,
    ict_per_record: int = 1,
    seed: int = 42,
) -> list[Pair]:
    """Text pairs of the requested kinds (for inspection and small corpora; training assembles the same pairs
    from pre-tokenised pieces, see :mod:`training.encoders.static`)."""
    unknown = set(kinds) - set(PAIR_KINDS)
    if unknown:
        raise ValueError(f"unknown pair kinds: {sorted(unknown)} (known: {', '.join(PAIR_KINDS)})")
    rng = random.Random(seed)
    pairs: list[Pair] = []
    for rec in records:
        v = record_views(rec)
        abstract = v.abstract
        if not abstract:
            continue
        if "title" in kinds and v.title:
            pairs.append(Pair(v.title, abstract, "title", v.id))
        if "keywords" in kinds and v.keywords:
            pairs.append(Pair(v.keywords, f"{v.title} {abstract}".strip(), "keywords", v.id))
        if "problem" in kinds and v.problem:
            clause, rest = v.problem
            pairs.append(Pair(clause, f"{v.title} {rest}".strip(), "problem", v.id))
        if "ict" in kinds and len(v.sentences) >= 2:
            for i in rng.sample(range(len(v.sentences)), min(ict_per_record, len(v.sentences))):
                rest = "".join(s for j, s in enumerate(v.sentences) if j != i)
                pairs.append(Pair(v.sentences[i].strip(), f"{v.title} {rest}".strip(), "ict", v.id))
    return pairs


class Bm25:
    """Small Okapi BM25 over pre-tokenised documents (scipy sparse), used to mine hard negatives."""

    def __init__(self, docs: Sequence[Sequence[str]], *, k1: float = 1.5, b: float = 0.75):
        from scipy import sparse

        self.vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        lengths = np.zeros(len(docs), dtype=np.float32)
        for i, toks in enumerate(docs):
            counts = Counter(toks)
            lengths[i] = len(toks)
            for t, c in counts.items():
                j = self.vocab.setdefault(t, len(self.vocab))
                rows.append(i)
                cols.append(j)
                vals.append(c)
        n = len(docs)
        tf = sparse.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, len(self.vocab)))
        df = np.bincount(np.asarray(cols, dtype=np.int64), minlength=len(self.vocab)).astype(np.float32)
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        avg = float(lengths.mean()) if n else 1.0
        norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))
        tf = tf.tocoo()
        w = tf.data * (k1 + 1) / (tf.data + norm[tf.row]) * idf[tf.col]
        self.matrix = sparse.csr_matrix((w, (tf.row, tf.col)), shape=tf.shape).T.tocsr()  # terms x docs

    def top_k(self, queries: Sequence[Sequence[str]], k: int) -> np.ndarray:
        """(n_queries, k) document indices by BM25 score (-1 where fewer documents match)."""
        out = np.full((len(queries), k), -1, dtype=np.int64)
        for qi, toks in enumerate(queries):
            ids = [self.vocab[t] for t in set(toks) if t in self.vocab]
            if not ids:
                continue
            scores = np.asarray(self.matrix[ids].sum(axis=0)).ravel()
            kk = min(k, int((scores > 0).sum()))
            if kk == 0:
                continue
            top = np.argpartition(-scores, kk - 1)[:kk]
            out[qi, :kk] = top[np.argsort(-scores[top])]
        return out


def sample_kind(available: Sequence[str], weights: Mapping[str, float], rng: random.Random) -> str:
    w = [max(weights.get(k, 1.0), 0.0) for k in available]
    total = sum(w)
    if total <= 0:
        return available[0]
    return rng.choices(list(available), weights=w, k=1)[0]
