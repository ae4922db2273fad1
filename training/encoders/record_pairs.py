"""Self-supervised pairs of a record as token ids (title, keywords, problem clause, inverse cloze) and the BM25
hard negatives mined for them."""

from __future__ import annotations

import random
from collections.abc import Sequence

from embeddings.encoders.static_zh import StaticZhEmbedding
from training.data.pairs import Bm25
from training.encoders.corpus import TokenizedRecord
from training.encoders.recipe import StaticRecipe

__all__ = ["PairBuilder", "mine_negatives", "record_token_docs"]


class PairBuilder:
    """Every record's pieces as embedding row ids, the pair kinds each record can give, and the pairs."""

    def __init__(self, module: StaticZhEmbedding, toks: Sequence[TokenizedRecord], recipe: StaticRecipe):
        self.r = recipe
        ids = module.token_ids
        self.title = [ids(t.title) for t in toks]
        self.keywords = [ids(t.keywords) for t in toks]
        self.sent = [[[ids(c) for c in s] for s in t.sentences] for t in toks]
        self.problem = [(ids(t.problem[0]), ids(t.problem[1])) if t.problem else None for t in toks]
        self.abstract = [[i for s in ss for c in s for i in c] for ss in self.sent]
        self.kinds: list[list[str]] = [self._kinds(i) for i in range(len(toks))]

    def _kinds(self, i: int) -> list[str]:
        kinds = self.r.pair_kinds
        k = []
        if "title" in kinds and self.title[i] and self.abstract[i]:
            k.append("title")
        if "keywords" in kinds and self.keywords[i] and self.abstract[i]:
            k.append("keywords")
        if "problem" in kinds and self.problem[i]:
            k.append("problem")
        if "ict" in kinds and (len(self.sent[i]) >= 2 or (self.sent[i] and len(self.sent[i][0]) >= 2)):
            k.append("ict")
        return k

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
        return self._inverse_cloze(i, rng)

    def _inverse_cloze(self, i: int, rng: random.Random) -> tuple[list[int], list[int]]:
        """A sentence or clause of the abstract -> the rest (title first)."""
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
        return q, (self.title[i] + rest)[: self.r.max_doc_tokens]


def record_token_docs(toks: Sequence[TokenizedRecord]) -> list[list[str]]:
    """Each record's title and abstract tokens: what BM25 ranks to find hard negatives."""
    return [t.title + [w for s in t.sentences for c in s for w in c] for t in toks]


def mine_negatives(toks: Sequence[TokenizedRecord], depth: int) -> list[list[int]]:
    """For each record, the records BM25 ranks closest to its title + abstract (itself left out)."""
    docs = record_token_docs(toks)
    bm25 = Bm25(docs)
    queries = [d[:64] for d in docs]
    top = bm25.top_k(queries, depth + 1)
    return [[int(j) for j in row if j >= 0 and j != i][:depth] for i, row in enumerate(top)]
