"""The one match pipeline every caller runs, in both directions: hard filters (one catalog snapshot) ->
hybrid candidates -> fusion -> fit -> rank -> score floor -> selection (interleave / bundle / diversity) ->
explanation. What differs between callers is in the `Plan`, never in a copy of these stages."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from matcher.indexing.catalog import Filter, Meta
from matcher.indexing.indexer import Side
from matcher.matching.curation import pinned_first, pins_to_fetch
from matcher.matching.fit import Ask
from matcher.matching.interleave import CANDIDATE, team_draft
from matcher.matching.ranker import Ranker
from matcher.matching.retrieval import Candidate, Components, QueryVector, Relevance, retrieve, search_text
from matcher.matching.selection import diversify, share_kinds

FitFn = Callable[[Meta, float], dict[str, float | None]]
Explanation = dict[str, object]
Explainer = Callable[[list[Candidate]], dict[int, Explanation]]


@dataclass(frozen=True)
class Trial:
    """A candidate ranker under an interleaved trial, and the share of match requests that interleave it."""

    ranker: Ranker
    share: float


@dataclass
class MatchOutcome:
    request_id: str
    query_text: str
    ask: Ask
    candidates: list[Candidate]
    explanations: dict[int, Explanation]
    model_version: str
    timings_ms: dict[str, float]
    need_id: int | None = None
    enterprise_id: int | None = None
    # an interleaved list (a ranker on trial): which ranker contributed each shown id, and the trial's version
    teams: dict[int, str] | None = None
    trial_version: str | None = None

    def version_of(self, candidate_id: int) -> str:
        """The version of the ranker that put this candidate in the list."""
        if self.teams is not None and self.teams.get(candidate_id) == CANDIDATE:
            return str(self.trial_version)
        return self.model_version


@dataclass
class Plan:
    """One query, resolved: what to retrieve from which side, how to fit, select and explain."""

    side: Side  # read once: a switch of encoder in flight never mixes two index pairs in one list
    text: str
    tokens: list[str]
    terms: (
        list[str] | None
    )  # what the lexical index is searched on (generic words out); None: all of the text's
    ask: Ask
    filter: Filter
    fit: FitFn
    dense_weight: float
    min_score: float
    k: int
    pool: int  # candidates retrieved from each index
    per_provider: int = 0  # 0 = no limit
    bundle_kinds: tuple[str, ...] = ()  # non-empty: the best `per_kind` of each of these kinds
    per_kind: int = 3
    # kinds asked together: retrieved each on its own (a small kind is not crowded out of the candidates) and
    # each given a share of the list (selection.share_kinds)
    kinds_apart: tuple[str, ...] = ()
    vector: QueryVector | None = None
    explainer: Explainer | None = None  # built for the selected candidates; None: no explanations
    need_id: int | None = None
    enterprise_id: int | None = None
    pinned: frozenset[int] = frozenset()  # the enterprise's pins: first in its list (curation.py)


class Pipeline:
    def __init__(
        self, relevance: Relevance, rng: random.Random | None = None, teacher: Relevance | None = None
    ) -> None:
        self.relevance = relevance
        # the teacher tier's calibration: fuses the candidates whose dense similarity is the teacher's
        self.teacher = teacher
        self._rng = rng or random.Random()

    def run(self, plan: Plan, ranker: Ranker, trial: Trial | None = None) -> MatchOutcome:
        """Every stage for one plan; `ranker` and `trial` are read once by the caller, so a switch in flight
        never mixes two rankers in one list."""
        t0 = time.perf_counter()
        cands, filter_s = self._candidates(plan)
        t2 = time.perf_counter()
        t1 = t0 + filter_s  # the filters run before each retrieval (once per kind when kinds are apart)
        self.rank(cands, plan.fit, plan.dense_weight, ranker, Relevance.language_of(plan.text))
        cands = [c for c in cands if c.score >= plan.min_score or c.id in plan.pinned]
        ranked = cands
        teams: dict[int, str] | None = None
        interleave = trial is not None and not plan.bundle_kinds and not plan.pinned
        if interleave and cands and self._rng.random() < trial.share:
            cands, teams = self._interleave(cands, trial.ranker)
            cands = share_kinds(cands, plan.kinds_apart, plan.per_provider, plan.k)
            teams = {c.id: teams[c.id] for c in cands}
        elif plan.bundle_kinds:
            picked: list[Candidate] = []
            for kind in plan.bundle_kinds:
                picked += diversify(
                    [c for c in cands if c.meta.kind == kind], plan.per_provider, plan.per_kind
                )
            cands = sorted(picked, key=lambda c: (-c.score, c.id))
        else:
            cands = share_kinds(cands, plan.kinds_apart, plan.per_provider, plan.k)
        limit = plan.per_kind * len(plan.bundle_kinds) if plan.bundle_kinds else plan.k
        cands = pinned_first(ranked, cands, plan.pinned, limit)
        t3 = time.perf_counter()
        explanations = plan.explainer(cands) if plan.explainer is not None and cands else {}
        t4 = time.perf_counter()
        return MatchOutcome(
            request_id=uuid.uuid4().hex,
            query_text=plan.text,
            ask=plan.ask,
            candidates=cands,
            explanations=explanations,
            model_version=ranker.version,
            timings_ms={
                "filter": round((t1 - t0) * 1000, 2),
                "retrieve": round((t2 - t1) * 1000, 2),
                "rank": round((t3 - t2) * 1000, 2),
                "explain": round((t4 - t3) * 1000, 2),
            },
            need_id=plan.need_id,
            enterprise_id=plan.enterprise_id,
            teams=teams,
            trial_version=None if teams is None or trial is None else str(trial.ranker.version),
        )

    def _candidates(self, plan: Plan) -> tuple[list[Candidate], float]:
        """Hard filters, then hybrid retrieval among the ids they allow; with kinds apart (or a bundle), once
        per kind, the query embedded once for all."""
        side = plan.side
        apart = plan.bundle_kinds or plan.kinds_apart
        filters = [replace(plan.filter, kinds=(kind,)) for kind in apart] if len(apart) > 1 else [plan.filter]
        vector = plan.vector
        if len(filters) > 1 and plan.dense_weight > 0:
            encoder = side.pair.encoder
            if vector is None or not vector.fits(plan.text, encoder.model_id):
                embedded = encoder.encode_queries([search_text(plan.text)])[0]
                vector = QueryVector(encoder.model_id, plan.text, embedded)
        cands: list[Candidate] = []
        filter_s = 0.0
        for f in filters:
            t = time.perf_counter()
            allowed = side.catalog.allowed(f)
            filter_s += time.perf_counter() - t
            if allowed is None or allowed.size:
                cands += retrieve(
                    side,
                    plan.text,
                    plan.tokens,
                    allowed,
                    plan.pool,
                    plan.dense_weight,
                    vector,
                    terms=plan.terms,
                    include=pins_to_fetch(plan.pinned, allowed),
                )
        return cands, filter_s

    def rank(
        self, cands: list[Candidate], fit: FitFn, w: float, ranker: Ranker, language: str | None = None
    ) -> None:
        """Fusion (relevance, calibrated for the query's language), fit, ranker score and score components for
        each candidate; best first."""
        now = time.time()
        rows = []
        teacher = self.teacher
        for c in cands:
            if c.tier == "teacher" and teacher is not None:
                c.relevance = teacher(c.dense, c.lexical, None, language)
            else:
                c.relevance = self.relevance(c.dense, c.lexical, w, language)
            c.fit = fit(c.meta, now)
            rows.append(c.features())
        scores = ranker.score(rows) if rows else np.zeros(0)
        parts = getattr(ranker, "components", None)
        relevance = self.relevance

        def describe(c: Candidate) -> Components:
            by_teacher = c.tier == "teacher" and teacher is not None
            fusion = teacher if by_teacher else relevance
            cw = fusion.params(language)[0] if by_teacher else w  # type: ignore[union-attr]
            comp: Components = {
                "dense": round(c.dense, 4),
                "lexical": round(c.lexical, 4),
                "fused": round(fusion.fused(c.dense, c.lexical, cw, language), 4),  # type: ignore[union-attr]
                "relevance": round(c.relevance, 4),
                "fit_features": {k: (None if v is None else round(v, 3)) for k, v in c.fit.items()},
                "dense_weight": cw,
                "ranker": ranker.version,
                "score": round(c.score, 4),
            }
            if parts is not None:
                comp["fit"] = round(parts(c.features())["fit"], 4)
            if by_teacher:
                comp["tier"] = "teacher"
            return comp

        for c, s in zip(cands, scores, strict=True):
            c.score = float(min(1.0, max(0.0, s)))
            c._describe = describe
            c._components = None
        cands.sort(key=lambda c: (-c.score, c.id))

    def _interleave(
        self, cands: list[Candidate], candidate: Ranker
    ) -> tuple[list[Candidate], dict[int, str]]:
        """`cands` (ranked by the ranker in service) team-draft interleaved with `candidate`'s order of the same
        candidates. Scores stay those of the ranker in service; the order is the interleaving's."""
        theirs = np.asarray(candidate.score([c.features() for c in cands]), dtype=np.float64)
        order_b = [cands[i].id for i in np.lexsort(([c.id for c in cands], -theirs))]
        merged = team_draft([c.id for c in cands], order_b, len(cands), self._rng)
        by_id = {c.id: c for c in cands}
        return [by_id[i] for i, _ in merged], dict(merged)
