"""Training text as token lists: normalised records and supervised pairs, tokenised records, the vocabulary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from embeddings.encoders.static_zh import is_cjk_word, text_tokens
from training.data.pairs import record_views, split_clauses

__all__ = [
    "SupervisedPair",
    "TokenizedRecord",
    "build_vocab",
    "normalise_pairs",
    "normalise_record",
    "tokenize_records",
]

# (query, positive, hard negative or None) texts of a supervised pair
SupervisedPair = tuple[str, str, str | None]


@dataclass
class TokenizedRecord:
    """A record as token lists: abstract -> sentences -> clauses -> tokens."""

    id: str
    title: list[str]
    keywords: list[str]
    sentences: list[list[list[str]]]
    problem: tuple[list[str], list[str]] | None


def normalise_record(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": str(rec.get("id", "")),
        "title": rec.get("title") or "",
        "text": rec.get("text") or rec.get("abstract") or "",
        "keywords": rec.get("keywords") or [],
    }


def normalise_pairs(pairs: Iterable[Sequence[str | None]] | None) -> list[SupervisedPair]:
    out = []
    for p in pairs or ():
        if len(p) not in (2, 3):
            raise ValueError("a supervised pair is (query, positive) or (query, positive, negative)")
        q, pos = str(p[0] or ""), str(p[1] or "")
        neg = str(p[2]) if len(p) == 3 and p[2] else None
        if q.strip() and pos.strip():
            out.append((q, pos, neg))
    return out


def _tokenize_record(rec: Mapping[str, Any]) -> TokenizedRecord:
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
    return TokenizedRecord(v.id, text_tokens(v.title), text_tokens(v.keywords), sentences, problem)


_TOKEN_CACHE: dict[tuple, TokenizedRecord] = {}
_TOKEN_CACHE_MAX = 50_000


def _record_key(rec: Mapping[str, Any]) -> tuple:
    return (rec["id"], rec["title"], rec["text"], tuple(rec["keywords"]))


def tokenize_records(records: Sequence[Mapping[str, Any]], show_progress: bool) -> list[TokenizedRecord]:
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


def build_vocab(toks: Sequence[TokenizedRecord], min_count: int, max_vocab: int) -> list[str]:
    counts: Counter[str] = Counter()
    chars: Counter[str] = Counter()
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
