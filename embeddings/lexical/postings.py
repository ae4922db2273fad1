"""The postings store of the BM25 index: vocabulary, per-term postings and per-document term lists, by slot.

Every document gets a *slot*. Postings are, per term, a numpy array of slots and one of term frequencies
with spare capacity (appends are amortised O(1); a query reads views, no copies). The documents' own
(term, tf) lists are kept in a CSR store so that a delete can lower the document frequencies and so that
explanations can say which query tokens a document contains. A delete tombstones the slot; ``compacted``
rebuilds the postings from the live documents. Not thread-safe by itself (``LexicalIndex`` locks).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from embeddings.vector.idmap import IdMap


class GrowableArray:
    """A numpy array with spare capacity (amortised O(1) appends, views for reading)."""

    __slots__ = ("a", "n")

    def __init__(self, dtype: Any, values: np.ndarray | None = None) -> None:
        if values is None:
            self.a = np.empty(16, dtype=dtype)
            self.n = 0
        else:
            self.a = np.ascontiguousarray(values, dtype=dtype)
            self.n = self.a.size

    def reserve(self, need: int) -> None:
        if need > self.a.size:
            a = np.empty(max(need, 2 * self.a.size, 16), dtype=self.a.dtype)
            a[: self.n] = self.a[: self.n]
            self.a = a

    def extend(self, values: np.ndarray | Sequence[Any]) -> None:
        m = len(values)
        self.reserve(self.n + m)
        self.a[self.n : self.n + m] = values
        self.n += m

    def append(self, value: Any) -> None:
        if self.n == self.a.size:
            self.reserve(self.n + 1)
        self.a[self.n] = value
        self.n += 1

    def view(self) -> np.ndarray:
        return self.a[: self.n]


def ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + l) for each (s, l), vectorised."""
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lens)
    offsets = np.repeat(starts - (ends - lens), lens)
    return np.arange(total, dtype=np.int64) + offsets


class Postings:
    """Vocabulary, document frequencies, postings and the per-document CSR store of live and dead slots."""

    def __init__(self) -> None:
        # vocabulary
        self.vocab: dict[str, int] = {}
        self.terms: list[str] = []
        self.df = GrowableArray(np.int64)
        # postings, per term id
        self.p_docs: list[np.ndarray] = []
        self.p_tfs: list[np.ndarray] = []
        self.p_len = GrowableArray(np.int64)
        # documents, per slot (CSR store of their unique terms and frequencies)
        self.slot_ids = GrowableArray(np.int64)  # -1 once deleted
        self.doc_len = GrowableArray(np.float64)
        self.doc_ptr = GrowableArray(np.int64, np.zeros(1, dtype=np.int64))
        self.doc_terms = GrowableArray(np.int32)
        self.doc_tfs = GrowableArray(np.float32)
        self.slot_of = IdMap()
        self.total_len = 0.0
        self.postings = 0
        self.dead_postings = 0

    def __len__(self) -> int:
        return len(self.slot_of)

    def slot(self, doc_id: int) -> int:
        """The slot of a live document, -1 when it is not indexed."""
        return int(self.slot_of.lookup(np.array([doc_id], dtype=np.int64))[0])

    def live_ids(self) -> np.ndarray:
        s = self.slot_ids.view()
        return s[s >= 0]

    @property
    def avgdl(self) -> float:
        n = len(self.slot_of)
        return self.total_len / n if n else 0.0

    def doc_terms_of(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        """(sorted term ids, term frequencies) of the document in ``slot``."""
        a, z = int(self.doc_ptr.a[slot]), int(self.doc_ptr.a[slot + 1])
        return self.doc_terms.a[a:z], self.doc_tfs.a[a:z]

    # -- writes -------------------------------------------------------------------------------------
    def term_id(self, token: str) -> int:
        t = self.vocab.get(token)
        if t is None:
            t = len(self.terms)
            self.vocab[token] = t
            self.terms.append(token)
            self.df.append(0)
            self.p_len.append(0)
            self.p_docs.append(np.empty(4, dtype=np.int32))
            self.p_tfs.append(np.empty(4, dtype=np.float32))
        return t

    def _new_slot(self, doc_id: int, length: int) -> int:
        slot = self.slot_ids.n
        self.slot_ids.append(doc_id)
        self.doc_len.append(float(length))
        self.slot_of.assign(np.array([doc_id], dtype=np.int64), np.array([slot], dtype=np.int64))
        self.total_len += length
        return slot

    def _append_postings(self, t: int, docs: np.ndarray | int, tfs: np.ndarray | float) -> None:
        n = int(self.p_len.a[t])
        m = 1 if np.isscalar(docs) else len(docs)  # type: ignore[arg-type]
        arr = self.p_docs[t]
        if n + m > arr.size:
            cap = max(n + m, 2 * arr.size)
            d2 = np.empty(cap, dtype=np.int32)
            d2[:n] = arr[:n]
            f2 = np.empty(cap, dtype=np.float32)
            f2[:n] = self.p_tfs[t][:n]
            self.p_docs[t], self.p_tfs[t] = d2, f2
            arr = d2
        arr[n : n + m] = docs
        self.p_tfs[t][n : n + m] = tfs
        self.p_len.a[t] = n + m

    def add_one(self, doc_id: int, tokens: Sequence[str]) -> None:
        counts = Counter(tokens)
        slot = self._new_slot(doc_id, len(tokens))
        tids = np.fromiter((self.term_id(tok) for tok in counts), dtype=np.int32, count=len(counts))
        tfs = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        order = np.argsort(tids)
        tids, tfs = tids[order], tfs[order]
        self.doc_terms.extend(tids)
        self.doc_tfs.extend(tfs)
        self.doc_ptr.append(self.doc_terms.n)
        df = self.df.a
        for t, tf in zip(tids.tolist(), tfs.tolist(), strict=True):
            self._append_postings(t, slot, tf)
            df[t] += 1
        self.postings += tids.size

    def add_batch(self, ids: list[int], lists: list[Sequence[str]]) -> None:
        # token -> term id (the only per-token Python loop)
        flat: list[int] = []
        vocab_get, term_id = self.vocab.get, self.term_id
        for toks in lists:
            for tok in toks:
                t = vocab_get(tok)
                flat.append(term_id(tok) if t is None else t)
        lens = np.fromiter((len(t) for t in lists), dtype=np.int64, count=len(lists))
        first = self.slot_ids.n
        new_slots = np.arange(first, first + len(ids), dtype=np.int64)
        self.slot_ids.extend(np.asarray(ids, dtype=np.int64))
        self.doc_len.extend(lens.astype(np.float64))
        self.slot_of.assign(np.asarray(ids, dtype=np.int64), new_slots)
        self.total_len += float(lens.sum())
        slots = np.repeat(np.arange(first, first + len(ids), dtype=np.int64), lens)
        terms = np.asarray(flat, dtype=np.int64)
        v = max(len(self.terms), 1)
        keys, tf = np.unique(slots * v + terms, return_counts=True)  # sorted by (slot, term)
        p_slots = (keys // v).astype(np.int32)
        p_terms = (keys % v).astype(np.int32)
        p_tfs = tf.astype(np.float32)
        # document store
        per_doc = np.bincount(p_slots - first, minlength=len(ids))
        base = self.doc_terms.n
        self.doc_terms.extend(p_terms)
        self.doc_tfs.extend(p_tfs)
        self.doc_ptr.extend(base + np.cumsum(per_doc))
        # postings: group by term (stable keeps slots ascending)
        order = np.argsort(p_terms, kind="stable")
        p_terms, p_slots, p_tfs = p_terms[order], p_slots[order], p_tfs[order]
        uniq, start, cnt = np.unique(p_terms, return_index=True, return_counts=True)
        df = self.df.a
        df[uniq] += cnt
        for t, s, c in zip(uniq.tolist(), start.tolist(), cnt.tolist(), strict=True):
            self._append_postings(t, p_slots[s : s + c], p_tfs[s : s + c])
        self.postings += int(p_terms.size)

    def remove(self, ids: list[int]) -> int:
        """Tombstone the slots of the given ids; returns how many were indexed."""
        if not ids:
            return 0
        arr = np.unique(np.asarray(ids, dtype=np.int64))
        slots = self.slot_of.lookup(arr)
        present = slots >= 0
        arr, slots = arr[present], slots[present]
        if slots.size == 0:
            return 0
        ptr = self.doc_ptr.a
        starts, lens = ptr[slots], ptr[slots + 1] - ptr[slots]
        terms = self.doc_terms.a[ranges(starts, lens)]
        np.subtract.at(self.df.a, terms, 1)  # a document lists each of its terms once
        self.slot_ids.a[slots] = -1
        self.total_len -= float(self.doc_len.a[slots].sum())
        self.slot_of.discard(arr)
        self.dead_postings += int(lens.sum())
        return int(slots.size)

    # -- compaction, loading and saving -------------------------------------------------------------
    def needs_compaction(self, compact_fraction: float) -> bool:
        return self.postings >= 1024 and self.dead_postings > compact_fraction * self.postings

    def compacted(self) -> Postings:
        """The same live documents without deleted slots or unused terms (slots renumbered)."""
        slot_ids = self.slot_ids.view()
        live = np.flatnonzero(slot_ids >= 0)
        ptr = self.doc_ptr.view()
        starts, lens = ptr[live], ptr[live + 1] - ptr[live]
        pick = ranges(starts, lens)
        terms = self.doc_terms.view()[pick]
        tfs = self.doc_tfs.view()[pick]
        # prune terms no live document uses
        used = self.df.view() > 0
        remap = np.cumsum(used) - 1
        terms = remap[terms].astype(np.int32)
        return Postings.from_arrays(
            terms=[t for t, u in zip(self.terms, used.tolist(), strict=True) if u],
            df=self.df.view()[used].copy(),
            slot_ids=slot_ids[live].copy(),
            doc_len=self.doc_len.view()[live].copy(),
            doc_ptr=np.concatenate([[0], np.cumsum(lens)]),
            doc_terms=terms,
            doc_tfs=tfs,
        )

    @classmethod
    def from_arrays(
        cls,
        *,
        terms: list[str],
        df: np.ndarray,
        slot_ids: np.ndarray,
        doc_len: np.ndarray,
        doc_ptr: np.ndarray,
        doc_terms: np.ndarray,
        doc_tfs: np.ndarray,
        post_ptr: np.ndarray | None = None,
        post_docs: np.ndarray | None = None,
        post_tfs: np.ndarray | None = None,
    ) -> Postings:
        """A complete state (after compaction or load); postings are derived when not given."""
        out = cls()
        v = len(terms)
        out.terms = list(terms)
        out.vocab = {t: i for i, t in enumerate(out.terms)}
        out.df = GrowableArray(np.int64, df)
        out.slot_ids = GrowableArray(np.int64, slot_ids)
        out.doc_len = GrowableArray(np.float64, doc_len)
        out.doc_ptr = GrowableArray(np.int64, doc_ptr)
        out.doc_terms = GrowableArray(np.int32, doc_terms)
        out.doc_tfs = GrowableArray(np.float32, doc_tfs)
        live = np.flatnonzero(out.slot_ids.view() >= 0)
        out.slot_of.assign(out.slot_ids.view()[live], live)
        out.total_len = float(out.doc_len.view()[live].sum())
        if post_ptr is None or post_docs is None or post_tfs is None:
            per_doc = np.diff(doc_ptr)
            slots = np.repeat(np.arange(slot_ids.size, dtype=np.int32), per_doc)
            order = np.argsort(doc_terms, kind="stable")
            post_docs = slots[order]
            post_tfs = np.ascontiguousarray(doc_tfs[order], dtype=np.float32)
            counts = np.bincount(doc_terms, minlength=v) if doc_terms.size else np.zeros(v, np.int64)
            post_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        post_docs = np.ascontiguousarray(post_docs, dtype=np.int32)
        post_tfs = np.ascontiguousarray(post_tfs, dtype=np.float32)
        inner = post_ptr[1:-1]
        out.p_docs = np.split(post_docs, inner) if v else []
        out.p_tfs = np.split(post_tfs, inner) if v else []
        out.p_len = GrowableArray(np.int64, np.diff(post_ptr))
        out.postings = int(post_ptr[-1]) if v else 0
        # postings of deleted slots still present (only after a load of an uncompacted state)
        dead = out.slot_ids.view() < 0
        out.dead_postings = int(np.diff(doc_ptr)[dead].sum()) if dead.any() else 0
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Copies of the arrays ``from_arrays`` takes back (postings packed CSR: ``post_ptr`` by term)."""
        v = len(self.terms)
        plen = self.p_len.view().copy()
        post_ptr = np.concatenate([[0], np.cumsum(plen)]).astype(np.int64)
        post_docs = np.empty(int(post_ptr[-1]), dtype=np.int32)
        post_tfs = np.empty(int(post_ptr[-1]), dtype=np.float32)
        for t in range(v):
            a, z = post_ptr[t], post_ptr[t + 1]
            post_docs[a:z] = self.p_docs[t][: plen[t]]
            post_tfs[a:z] = self.p_tfs[t][: plen[t]]
        return {
            "df": self.df.view().copy(),
            "slot_ids": self.slot_ids.view().copy(),
            "doc_len": self.doc_len.view().copy(),
            "doc_ptr": self.doc_ptr.view().copy(),
            "doc_terms": self.doc_terms.view().copy(),
            "doc_tfs": self.doc_tfs.view().copy(),
            "post_ptr": post_ptr,
            "post_docs": post_docs,
            "post_tfs": post_tfs,
        }
