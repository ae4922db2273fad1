"""Supervised (query, positive, negative) pairs mixed into the static encoder's batches: token ids, their hard
negatives, and batches in which no record appears twice."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from embeddings.encoders.static_zh import StaticZhEmbedding
from training.data.pairs import Bm25
from training.encoders.corpus import TokenizedRecord
from training.encoders.recipe import StaticRecipe
from training.encoders.record_pairs import PairBuilder, record_token_docs

__all__ = ["PairTokens", "SupervisedPairs", "dedup_batches"]

# (query tokens, positive tokens, negative tokens or None, positive text)
PairTokens = tuple[list[str], list[str], list[str] | None, str]

_TEXT_KEY = re.compile(r"[\s。．.，,：:；;]+")


def _text_key(text: str) -> str:
    return _TEXT_KEY.sub("", text or "")


def dedup_batches(items: Sequence[int], key: Callable[[int], Hashable], batch_size: int) -> list[list[int]]:
    """Consecutive batches of ``items`` in order, an item whose key is already in the batch moved to a later one."""
    batches: list[list[int]] = []
    queue = list(items)
    while queue:
        batch: list[int] = []
        seen: set[Hashable] = set()
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


class SupervisedPairs:
    """Supervised (query, positive, negative) pairs as token ids, their hard negatives and their batching.

    A pair's positive is matched to the record it was taken from (same text), so that the record's own pair
    and the supervised pair never share a batch (each would be a false negative of the other). In a batch,
    item ``i >= 0`` is record ``i`` and item ``-1 - j`` is supervised pair ``j``."""

    def __init__(
        self,
        module: StaticZhEmbedding,
        builder: PairBuilder,
        toks: Sequence[TokenizedRecord],
        used: Sequence[Mapping[str, Any]],
        pair_toks: Sequence[PairTokens],
        r: StaticRecipe,
    ):
        self.r = r
        self.builder = builder
        m = r.max_doc_tokens
        ids = module.token_ids
        self.q = [ids(q) or [0] for q, _, _, _ in pair_toks]  # token lists are non-empty, so are id lists
        self.p = [(ids(p) or [0])[:m] for _, p, _, _ in pair_toks]
        self.n = [(ids(n) or [0])[:m] if n else None for _, _, n, _ in pair_toks]
        self.source = self._sources(used, pair_toks)
        self.n_records = len(toks)
        self.mined: list[list[int]] = [[] for _ in pair_toks]
        if r.pair_negatives == "bm25" and any(n is None for n in self.n):
            bm25 = Bm25(record_token_docs(toks))
            want = [j for j, n in enumerate(self.n) if n is None]
            top = bm25.top_k([pair_toks[j][0] for j in want], r.hard_negative_depth + 1)
            for j, row in zip(want, top, strict=True):
                mined = [int(i) for i in row if i >= 0 and i != self.source[j]]
                self.mined[j] = mined[: r.hard_negative_depth]

    @staticmethod
    def _sources(used: Sequence[Mapping[str, Any]], pair_toks: Sequence[PairTokens]) -> list[int | None]:
        """The record each pair's positive text was taken from, if any."""
        by_text: dict[str, int] = {}
        for i, rec in enumerate(used):
            by_text.setdefault(_text_key(rec["text"]), i)
            by_text.setdefault(_text_key(rec["title"] + rec["text"]), i)
        source: list[int | None] = [by_text.get(_text_key(text)) for _, _, _, text in pair_toks]
        # a positive that is a record's title and text followed by more (tags, details) is that record too
        full = [(_text_key(rec["title"] + rec["text"]), i) for i, rec in enumerate(used)]
        for j, (_, _, _, text) in enumerate(pair_toks):
            if source[j] is None:
                key = _text_key(text)
                source[j] = next((i for k, i in full if len(k) >= 8 and key.startswith(k)), None)
        return source

    def key(self, item: int) -> Hashable:
        if item >= 0:
            return item
        src = self.source[-1 - item]
        return src if src is not None else ("pair", -1 - item)

    def epoch_batches(self, trainable: Sequence[int], rng: random.Random) -> list[list[int]]:
        items = [i for _ in range(self.r.passes_per_epoch) for i in trainable]
        items += [-1 - j for _ in range(self.r.pair_repeats) for j in range(len(self.q))]
        rng.shuffle(items)
        return dedup_batches(items, self.key, self.r.batch_size)

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

    def triplet(
        self, j: int, in_batch: set[int], rng: random.Random
    ) -> tuple[list[int], list[int], list[int]]:
        if self.n[j]:
            neg = self.n[j]
        else:
            cands = [i for i in self.mined[j] if i not in in_batch] or self.mined[j]
            neg = self.builder.doc(rng.choice(cands)) if cands else None
            if not neg:
                return self.q[j], self.p[j], self.random_doc(in_batch | {self.source[j]}, rng)
        return self.q[j], self.p[j], neg

    def summary(self) -> dict[str, int | str]:
        return {
            "used": len(self.q),
            "with_given_negative": sum(1 for n in self.n if n),
            "matched_to_a_record": sum(1 for s in self.source if s is not None),
            "negatives_for_the_rest": self.r.pair_negatives,
            "repeats_per_epoch": self.r.pair_repeats,
        }
