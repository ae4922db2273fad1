"""Hybrid retrieval: candidates from the dense and the lexical index of one side, each with both similarities
and the catalog row it was read with, and `Relevance`, the fusion of the two similarities."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from embeddings.lexical.feedback import DEFAULT_FEEDBACK, FeedbackConfig, expand_query
from embeddings.lexicon import default_lexicon
from embeddings.text import has_cjk, lexical_terms, tokenize
from matcher.indexing.catalog import Meta
from matcher.indexing.indexer import Side

Components = dict[str, object]


@dataclass
class Candidate:
    id: int
    meta: Meta  # read once from the catalog with the candidate: later stages never read the catalog again
    dense: float
    lexical: float
    relevance: float = 0.0
    # whose dense similarity `dense` is: "student" (the index pair's encoder) or "teacher" (the teacher tier)
    tier: str = "student"
    fit: dict[str, float | None] = field(default_factory=dict)
    score: float = 0.0
    # the score's parts for the explanation: built on first use, since most candidates are never shown
    _describe: Callable[[Candidate], Components] | None = field(default=None, repr=False, compare=False)
    _components: Components | None = field(default=None, repr=False, compare=False)

    def features(self) -> dict[str, float | None]:
        """The row a ranker scores (and an impression logs): retrieval scores and fit features."""
        return {"dense": self.dense, "lexical": self.lexical, "relevance": self.relevance, **self.fit}

    @property
    def components(self) -> Components:
        if self._components is None:
            self._components = self._describe(self) if self._describe is not None else {}
        return self._components


@dataclass(frozen=True)
class QueryVector:
    """A query embedding computed ahead (digests encode their queries in batches), the model that made it and
    the text it embeds: retrieval uses it only for that text against an index pair of the same model."""

    model_id: str
    text: str
    vector: np.ndarray

    def fits(self, text: str, model_id: str) -> bool:
        return self.text == text and self.model_id == model_id


class Relevance:
    """Fuses the dense and lexical similarities into one text relevance in [0, 1], comparable across queries and
    endpoints: the probability that the candidate is relevant, calibrated per query language.

    dense: cosine (normalised vectors); lexical: BM25 divided by the query's own upper bound, so both are
    absolute rather than per-query min-max. relevance = sigmoid((w*dense + (1-w)*lexical - mid) / scale), with
    ``w``, ``mid`` and ``scale`` per language ("zh": a query with Chinese; "latin": the others), fitted for the
    encoder in service (`matcher.matching.calibration`); ``dense_weight`` / ``languages`` given here win."""

    def __init__(
        self,
        dense_weight: float = 0.1,
        mid: float = 0.2,
        scale: float = 0.06,
        *,
        languages: dict[str, tuple[float, float, float]] | None = None,
        source: str = "built-in",
    ) -> None:
        self.languages = dict(languages or {"zh": (dense_weight, mid, scale), "latin": (0.0, mid, scale)})
        self.dense_weight = self.languages.get("zh", (dense_weight, mid, scale))[0]
        self.mid = mid
        self.scale = scale
        self.source = source

    @staticmethod
    def language_of(text: str) -> str:
        return "zh" if has_cjk(text) else "latin"

    def params(self, language: str | None) -> tuple[float, float, float]:
        return self.languages.get(language or "zh") or (self.dense_weight, self.mid, self.scale)

    def weight_for(self, text: str) -> float:
        return self.params(self.language_of(text))[0]

    def fused(
        self, dense: float, lexical: float, w: float | None = None, language: str | None = None
    ) -> float:
        w = self.params(language)[0] if w is None else w
        return w * max(0.0, dense) + (1 - w) * lexical

    def __call__(
        self, dense: float, lexical: float, w: float | None = None, language: str | None = None
    ) -> float:
        _, mid, scale = self.params(language)
        x = (self.fused(dense, lexical, w, language) - mid) / scale
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def crosslingual(text: str) -> str:
    """The Chinese words a dictionary gives for an English text ('' for text with Chinese, or without the
    dictionary): searched together with the text, so that an English need reaches Chinese records."""
    lexicon = default_lexicon()
    return lexicon.expand(text) if lexicon is not None else ""


def search_text(text: str, extra: str | None = None) -> str:
    """What the dense side embeds for a query text: the text and its cross-lingual words (digests batch
    their query vectors with this too, so that a precomputed vector equals the one a match would compute).
    ``extra``: the text's `crosslingual` words when the caller has them already."""
    extra = crosslingual(text) if extra is None else extra
    return f"{text}\n{extra}" if extra else text


def retrieve(
    side: Side,
    text: str,
    tokens: list[str],
    allowed: np.ndarray | None,
    n: int,
    dense_weight: float,
    vector: QueryVector | None = None,
    terms: list[str] | None = None,
    include: Sequence[int] = (),
    feedback: FeedbackConfig | None = DEFAULT_FEEDBACK,
) -> list[Candidate]:
    """Candidates from both indexes restricted to `allowed`, each with both similarities; the ids in `include`
    (allowed ones: an enterprise's pins) are candidates whether or not an index finds them.

    `tokens` are `tokenize(text)`; the lexical index is queried with them plus the text's character
    bigrams (`lexical_terms`), as its documents were indexed, or with `terms` when given; for an English text,
    also with the Chinese words of `crosslingual` (which the dense side embeds with the text: `search_text`).
    A candidate removed from the catalog while the indexes were searched is dropped. A query without Chinese
    whose first lexical hits are mostly without Chinese is searched again expanded by relevance feedback
    (`embeddings.lexical.feedback`, RM3; ``feedback=None`` turns it off), and its lexical similarities are those
    of the expanded query. With the teacher tier on (the pair has a `teacher`), each candidate the tier holds a
    vector for gets the teacher's cosine with the query as its dense similarity (``tier="teacher"``)."""
    pair = side.pair
    qvec = None
    extra = crosslingual(text)
    teacher = getattr(pair, "teacher", None)
    if teacher is not None and (
        not teacher.vectors
        or (teacher.languages is not None and Relevance.language_of(text) not in teacher.languages)
    ):
        teacher = None  # nothing embedded yet, or a query language the tier is not calibrated for
    if dense_weight > 0 or teacher is not None:  # with the teacher tier, both indexes always give candidates
        if vector is not None and vector.fits(text, pair.encoder.model_id):
            qvec = vector.vector
        else:  # the pair's own encoder: consistent across a swap
            qvec = pair.encoder.encode_queries([search_text(text, extra)])[0]
    terms = lexical_terms(text, tokens) if terms is None else terms
    if extra:
        terms = terms + lexical_terms(extra, tokenize(extra))
    upper = pair.upper_bound(terms)
    dense_hits = pair.dense_search(qvec, n, allowed) if qvec is not None else []
    lex_hits = pair.lexical_search(terms, n, allowed, upper=upper) if dense_weight < 1 else []
    if feedback is not None and lex_hits and not has_cjk(text):
        expanded = expand_query(pair.lexical, terms, lex_hits, feedback)
        if expanded is not None:
            terms, upper = expanded, pair.upper_bound(expanded)  # type: ignore[assignment]
            lex_hits = pair.lexical_search(terms, n, allowed, upper=upper)
    metas = side.catalog.get_many(
        dict.fromkeys([i for i, _ in dense_hits] + [i for i, _ in lex_hits] + list(include))
    )
    if not metas:
        return []
    ids = list(metas)
    # each side scores the candidates only the other side found
    dense = dict(dense_hits)
    missing = [i for i in ids if i not in dense]
    if missing and qvec is not None:
        dense.update(pair.dense_scores(qvec, missing))
    lex = dict(lex_hits)
    missing = [i for i in ids if i not in lex]
    if missing:
        lex.update(pair.lexical_scores(terms, missing, upper=upper))
    cands = [
        Candidate(id=i, meta=m, dense=float(dense.get(i, 0.0)), lexical=float(lex.get(i, 0.0)))
        for i, m in metas.items()
    ]
    if teacher is not None:
        # the teacher tier: a candidate with a teacher vector takes the teacher's similarity (and is fused with
        # the teacher's calibration, `Pipeline.rank`); one without keeps the student's
        sims = teacher.similarities(teacher.query_vector(text), ids)
        for c in cands:
            t = sims.get(c.id)
            if t is not None:
                c.dense, c.tier = t, "teacher"
    return cands
