"""One side's pair of indexes (dense vectors + BM25) kept together, with the stamps that say which version of
each record they hold, so start-up can reconcile them with the store and re-index only what differs.

The stamps are saved inside each index's own versioned save (an attachment checksummed with its data): when
start-up falls back to an older version of either index, it also gets the stamps that describe that
version, and a record is trusted only where both loaded versions hold it at the same stamp."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from embeddings.encoders.base import Encoder
from embeddings.lexical.bm25 import LexicalIndex
from embeddings.persist import IndexCorruptError, IndexMismatchError, check_manifest, read_manifest
from embeddings.text import LEXICAL_TERMS_ID, lexical_terms
from embeddings.vector.faiss_index import FaissIndex
from embeddings.vector.load import load_index
from matcher.errors import ServiceUnavailable
from matcher.indexing.teacher_tier import TeacherStore
from matcher.settings import Settings

logger = logging.getLogger(__name__)

STAMPS = "stamps"  # name of the attachment that holds a version's stamps
FEED_SEQ = "feed_seq"  # the change-feed seq this version has applied everything up to (store/feed.py)

UPSERT_CHUNK = 8192  # records encoded and indexed per step
SEGMENT_BATCH = 256  # records whose text is segmented and encoded together (their clauses stay cached)


class IndexBuiltByOtherModel(ServiceUnavailable):
    """The saved index was made by another encoder (model or dimension): refused until `matcher reindex`."""


class IndexPair:
    def __init__(
        self, name: str, encoder: Encoder, settings: Settings, *, teacher: TeacherStore | None = None
    ) -> None:
        self.name = name
        # the side's teacher vectors (matcher/indexing/teacher_tier.py), told of every upsert and removal
        self.teacher = teacher
        self.encoder = encoder
        self.settings = settings
        self.root = settings.index_dir / name
        self.dense = self._new_dense()
        self.lexical = LexicalIndex(tokenizer_id=LEXICAL_TERMS_ID)
        self.stamps: dict[int, float] = {}
        self.saved_feed_seq: int | None = None  # what the loaded version had applied; None: saved without one
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ persistence
    def load_or_create(self) -> None:
        """Load what was saved. A corrupt index, or a lexical index tokenised by older code, is dropped and
        rebuilt from the store; a dense index made by another encoder is refused (`IndexBuiltByOtherModel`)
        unless ``reindex_on_model_change`` is set."""
        if not self.root.exists():
            return
        try:
            self.dense = load_index(
                self.root / "vectors",
                expected_model_id=self.encoder.model_id,
                expected_dimension=self.encoder.dimension,
                approximate_threshold=self.settings.approximate_threshold,
            )
        except IndexMismatchError as exc:
            if not self.settings.reindex_on_model_change:
                raise self._other_model(exc) from None
            logger.warning("%s index built by another model (%s): rebuilding from the store", self.name, exc)
            self._reset()
            return
        except (IndexCorruptError, FileNotFoundError, KeyError, ValueError, TypeError, OSError) as exc:
            logger.warning("%s index unreadable (%s): rebuilding from the store", self.name, exc)
            self._reset()
            return
        try:
            self.lexical = LexicalIndex.load(self.root / "lexical", expected_tokenizer=LEXICAL_TERMS_ID)
            self.stamps = _agreed_stamps(
                _stamps_of(self.dense.attachments), _stamps_of(self.lexical.attachments)
            )
            self.saved_feed_seq = _agreed_seq(self.dense.attachments, self.lexical.attachments)
        except (IndexMismatchError, IndexCorruptError, FileNotFoundError, KeyError, ValueError, TypeError,
                OSError) as exc:  # fmt: skip
            logger.warning("%s lexical index unusable (%s): rebuilding from the store", self.name, exc)
            self._reset()

    def check_model(self) -> None:
        """What `load_or_create` would refuse, read from the saved manifest alone (no vectors loaded): raises
        `IndexBuiltByOtherModel` for an index of another encoder; a missing or unreadable one is not a refusal
        (the start rebuilds it)."""
        if self.settings.reindex_on_model_change:
            return
        try:
            manifest = read_manifest(self.root / "vectors")
        except (IndexCorruptError, FileNotFoundError, KeyError, ValueError, TypeError, OSError):
            return
        try:
            check_manifest(
                manifest,
                str(self.root / "vectors"),
                expected_model_id=self.encoder.model_id,
                expected_dimension=self.encoder.dimension,
            )
        except IndexMismatchError as exc:
            raise self._other_model(exc) from None

    def _other_model(self, exc: IndexMismatchError) -> IndexBuiltByOtherModel:
        return IndexBuiltByOtherModel(
            f"the {self.name} index at {self.root} was built by another encoder ({exc}); "
            "run `matcher reindex` to rebuild it with the configured one, or configure the model it was built with"
        )

    def _new_dense(self) -> FaissIndex:
        return FaissIndex(
            self.encoder.dimension,
            model_id=self.encoder.model_id,
            approximate_threshold=self.settings.approximate_threshold,
        )

    def _reset(self) -> None:
        self.dense = self._new_dense()
        self.lexical = LexicalIndex(tokenizer_id=LEXICAL_TERMS_ID)
        self.stamps = {}
        self.saved_feed_seq = None

    def reconcile(self, store: dict[int, float]) -> set[int]:
        """Drop what the store no longer has; return the ids to (re)index: new, changed, or missing anywhere."""
        dense_ids = set(self.dense.ids().tolist())
        lex_ids = set(self.lexical.ids())
        gone = (dense_ids | lex_ids | set(self.stamps)) - set(store)
        if gone:
            self.remove(sorted(gone))
        return {
            i
            for i, stamp in store.items()
            if self.stamps.get(i) != stamp or i not in dense_ids or i not in lex_ids
        }

    def snapshot_stamps(self) -> dict[int, float]:
        with self._lock:
            return dict(self.stamps)

    def save(self, stamps: dict[int, float], root: Path | None = None, feed_seq: int | None = None) -> None:
        """Each index saves `stamps` inside its own new version, so the stamps loaded with a version are the
        ones taken before it was written: they never claim more than that version holds. ``root`` writes
        the pair elsewhere (an index snapshot) in the same layout. `feed_seq`, taken with the stamps, is where a
        restart resumes following the change feed."""
        attachments: dict[str, object] = {STAMPS: {str(k): v for k, v in stamps.items()}}
        if feed_seq is not None:
            attachments[FEED_SEQ] = int(feed_seq)
        root = self.root if root is None else root
        root.mkdir(parents=True, exist_ok=True)
        self.dense.save(str(root / "vectors"), attachments=attachments)
        self.lexical.save(root / "lexical", attachments=attachments)

    # ------------------------------------------------------------------ writes
    def upsert(
        self,
        ids: Sequence[int],
        texts: Sequence[str],
        stamps: Sequence[float],
        *,
        show_progress: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Encode and index in chunks, so that a rebuild of a large store holds one chunk's tokens and vectors
        at a time rather than the whole collection's. ``progress(n)`` is told each chunk's size once indexed."""
        for start in range(0, len(ids), UPSERT_CHUNK):
            stop = start + UPSERT_CHUNK
            self._upsert_chunk(
                ids[start:stop], texts[start:stop], stamps[start:stop], show_progress=show_progress
            )
            if progress is not None:
                progress(len(ids[start:stop]))

    def _upsert_chunk(
        self, ids: Sequence[int], texts: Sequence[str], stamps: Sequence[float], *, show_progress: bool
    ) -> None:
        # lexical terms first, then the encoder on the same few hundred texts: its tokeniser finds their clauses
        # segmented and still cached (a whole chunk's clauses would overflow the cache and be segmented twice)
        terms: list[list[str]] = []
        parts: list[np.ndarray] = []
        for start in range(0, len(texts), SEGMENT_BATCH):
            batch = list(texts[start : start + SEGMENT_BATCH])
            terms += [lexical_terms(t) for t in batch]
            parts.append(np.asarray(self.encoder.encode_documents(batch, show_progress=show_progress)))
        vecs = np.concatenate(parts) if parts else np.zeros((0, self.encoder.dimension), dtype=np.float32)
        arr = np.asarray(ids, dtype=np.int64)
        self.dense.upsert(arr, vecs)
        self.lexical.upsert_many([int(i) for i in ids], terms)
        with self._lock:
            for i, s in zip(ids, stamps, strict=True):
                self.stamps[int(i)] = s
        if self.teacher is not None:  # queued only: the teacher embeds them in the background
            self.teacher.submit(ids, texts, stamps)

    def remove(self, ids: Sequence[int]) -> None:
        arr = np.asarray(ids, dtype=np.int64)
        self.dense.remove(arr)
        self.lexical.remove_many(int(i) for i in ids)
        with self._lock:
            for i in ids:
                self.stamps.pop(int(i), None)
        if self.teacher is not None:
            self.teacher.drop(ids)

    # ------------------------------------------------------------------ reads
    def dense_search(self, qvec: np.ndarray, n: int, allowed: np.ndarray | None) -> list[tuple[int, float]]:
        scores, ids = self.dense.search(qvec.reshape(1, -1), n, allowed=allowed)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def dense_scores(self, qvec: np.ndarray, ids: Sequence[int]) -> dict[int, float]:
        arr = np.asarray([int(i) for i in ids], dtype=np.int64)
        if arr.size == 0:
            return {}
        sims = self.dense.similarities(qvec, arr)
        ok = ~np.isnan(sims)
        return dict(zip(arr[ok].tolist(), sims[ok].tolist(), strict=True))

    def upper_bound(self, tokens: list[str] | Mapping[str, float]) -> float:
        """The most BM25 any document could score for these tokens (each term saturated): makes lexical
        scores absolute in [0, 1] and comparable across queries. A mapping is a weighted query."""
        stats = self.lexical.term_stats(tokens)
        counts: dict[str, float] = {}
        if isinstance(tokens, Mapping):
            counts = {t: float(w) for t, w in tokens.items()}
        else:
            for t in tokens:
                counts[t] = counts.get(t, 0) + 1
        return float(sum(stats[t]["idf"] * c for t, c in counts.items() if t in stats))

    def lexical_search(
        self,
        tokens: list[str] | Mapping[str, float],
        n: int,
        allowed: np.ndarray | None,
        *,
        upper: float | None = None,
    ) -> list[tuple[int, float]]:
        """Top n by BM25, scores divided by the query's upper bound (pass `upper` when already known)."""
        upper = self.upper_bound(tokens) if upper is None else upper
        if upper <= 0:
            return []
        return [(i, s / upper) for i, s in self.lexical.search(tokens, n, allowed=allowed)]

    def lexical_scores(
        self, tokens: list[str] | Mapping[str, float], ids: Sequence[int], *, upper: float | None = None
    ) -> dict[int, float]:
        """Normalised BM25 of the given ids (ids matching no token are left out)."""
        upper = self.upper_bound(tokens) if upper is None else upper
        if upper <= 0 or not len(ids):
            return {}
        arr = np.asarray([int(i) for i in ids], dtype=np.int64)
        s = self.lexical.score_ids(tokens, arr)
        hit = s > 0
        return dict(zip(arr[hit].tolist(), (s[hit] / upper).tolist(), strict=True))


def _stamps_of(attachments: dict[str, object]) -> dict[int, float]:
    """The stamps saved with an index version ({} for a version saved without them)."""
    raw = attachments.get(STAMPS, {})
    if not isinstance(raw, dict):
        raise ValueError(f"{STAMPS} attachment is not an object")
    return {int(k): float(v) for k, v in raw.items()}


def _agreed_seq(dense: dict[str, object], lexical: dict[str, object]) -> int | None:
    """The feed seq both loaded versions have applied (the smaller one after a fallback of either)."""
    seqs = [a.get(FEED_SEQ) for a in (dense, lexical)]
    if any(not isinstance(s, int) for s in seqs):
        return None
    return min(int(s) for s in seqs)  # type: ignore[arg-type]


def _agreed_stamps(dense: dict[int, float], lexical: dict[int, float]) -> dict[int, float]:
    """The records both loaded versions hold at the same stamp; after a fallback of one index the two can
    disagree, and a record either side may hold at another version is re-indexed by the reconcile."""
    return {i: s for i, s in dense.items() if lexical.get(i) == s}
