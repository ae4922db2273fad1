"""`MatchEngine`: the face callers hold (the API, the registry follower, digests, webhooks, evaluation).

It owns the rankers in service and those on trial (shared, and per tenant), and runs every match, in both directions, through the
one pipeline (matcher/matching/pipeline.py); the indexes and catalogs it reads belong to its `Indexer`."""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

from sqlalchemy.engine import Engine

from embeddings.encoders.base import Encoder
from embeddings.lexicon import default_lexicon
from embeddings.text import has_cjk
from matcher.domain.tables import Enterprise, Need, Resource
from matcher.domain.taxonomy import Taxonomy
from matcher.indexing.catalog import Catalog
from matcher.indexing.follower import FeedFollower
from matcher.indexing.indexer import Indexer
from matcher.indexing.pair import IndexPair
from matcher.matching.calibration import fusion_for, teacher_fusion_for
from matcher.matching.pipeline import MatchOutcome, Pipeline, Trial
from matcher.matching.query import MatchQuery, check_k, match_plan
from matcher.matching.ranker import Ranker, TransparentRanker
from matcher.matching.retrieval import QueryVector, Relevance
from matcher.matching.reverse import reverse_plan
from matcher.settings import Settings


class MatchEngine:
    def __init__(
        self,
        settings: Settings,
        db: Engine,
        taxonomy: Taxonomy,
        encoder: Encoder,
        *,
        ranker: Ranker | None = None,
        relevance: Relevance | None = None,
        teacher: Encoder | None = None,
        teacher_relevance: Relevance | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.taxonomy = taxonomy
        # the shared ranker: served to every tenant without one of its own (the transparent default at first)
        self.ranker: Ranker = ranker or TransparentRanker()
        # a ranker on interleaved trial (matcher/models/trial.py) against the shared one; set and cleared by the
        # registry follower
        self.trial: Trial | None = None
        # tenant -> its own ranker / trial (matcher/models/registry.py scopes). Replaced whole, never mutated,
        # so a request reads one consistent mapping
        self.tenant_rankers: dict[str, Ranker] = {}
        self.tenant_trials: dict[str, Trial] = {}
        self.relevance = relevance or fusion_for(encoder, settings)
        # which requests interleave a trial, and how: seeded by simulations for reproducible runs
        self._trial_rng = random.Random()
        # the teacher tier (MATCHER_TEACHER=on, or a teacher given): its model and its own calibration, both
        # checked here so that a wrong path or dimension stops the start with one line
        if teacher is None and settings.teacher == "on":
            from matcher.indexing.teacher_tier import load_teacher

            teacher = load_teacher(settings)
        if teacher is not None and teacher_relevance is None:
            teacher_relevance = teacher_fusion_for(teacher)
        self.pipeline = Pipeline(self.relevance, self._trial_rng, teacher_relevance)
        self.indexer = Indexer(settings, db, taxonomy, encoder, teacher=teacher)
        # a query language the teacher's calibration lacks is served by the student
        languages = frozenset(teacher_relevance.languages) if teacher_relevance is not None else None
        for store in self.indexer.teachers.values():
            store.languages = languages
        # follows the store's change feed (writes of other processes) once started with follow=True
        self.follower: FeedFollower | None = None

    # ------------------------------------------------------------------ rankers per tenant
    def ranker_for(self, tenant: str) -> Ranker:
        """The ranker `tenant` is served: its own, else the shared one (else the transparent default)."""
        return self.tenant_rankers.get(tenant) or self.ranker

    def trial_for(self, tenant: str) -> Trial | None:
        """The trial `tenant`'s lists interleave: its own; the shared trial only while it is served the shared
        ranker (the one that trial is compared with)."""
        own = self.tenant_trials.get(tenant)
        if own is not None or tenant in self.tenant_rankers:
            return own
        return self.trial

    def set_tenant_ranker(self, tenant: str, ranker: Ranker | None) -> None:
        """Serve `tenant` its own ranker, or (None) the shared one again."""
        rankers = {t: r for t, r in self.tenant_rankers.items() if t != tenant}
        if ranker is not None:
            rankers[tenant] = ranker
        self.tenant_rankers = rankers  # one assignment: requests in flight keep the mapping they read

    def set_tenant_trial(self, tenant: str, trial: Trial | None) -> None:
        trials = {t: x for t, x in self.tenant_trials.items() if t != tenant}
        if trial is not None:
            trials[tenant] = trial
        self.tenant_trials = trials

    # ------------------------------------------------------------------ matching
    def dense_weight_for(self, text: str) -> float:
        """The dense side's weight for the query's language: a configured one, else the encoder's calibration
        (docs/encoders.md)."""
        override = self.settings.dense_weight if has_cjk(text) else self.settings.dense_weight_latin
        return self.relevance.weight_for(text) if override is None else override

    def match(self, q: MatchQuery, *, tenant: str, vector: QueryVector | None = None) -> MatchOutcome:
        """need / enterprise / free text -> resources, ranked, filtered, explained. `vector`: the query's
        embedding when computed ahead (used only if the serving encoder made it)."""
        # read once: a switch in flight never mixes two rankers
        ranker, trial = self.ranker_for(tenant), self.trial_for(tenant)
        plan = match_plan(
            q,
            tenant,
            side=self.indexer.supply_side(),
            db=self.db,
            taxonomy=self.taxonomy,
            settings=self.settings,
            weight_for=self.dense_weight_for,
            vector=vector,
        )
        return self.pipeline.run(plan, ranker, trial if q.interleave else None)

    def reverse(
        self,
        resource_id: int,
        *,
        tenant: str,
        k: int = 10,
        min_score: float | None = None,
        include: Sequence[str] = ("need", "enterprise"),
        language: str | None = None,
    ) -> MatchOutcome:
        """resource (scenario, fund, incubator, result) -> the enterprises and open needs it fits, explained in
        `language` (None: the resource's own)."""
        check_k(k, self.settings)
        ranker = self.ranker_for(tenant)  # read once, as in `match`
        plan = reverse_plan(
            resource_id,
            tenant=tenant,
            side=self.indexer.demand_side(),
            db=self.db,
            taxonomy=self.taxonomy,
            k=k,
            min_score=self.settings.default_min_score if min_score is None else min_score,
            include=include,
            weight_for=self.dense_weight_for,
            language=language,
        )
        return self.pipeline.run(plan, ranker)

    # ------------------------------------------------------------------ the indexes (the indexer's)
    def start(self, *, background_save_s: float = 30.0, follow: bool = False) -> None:
        """Load the indexes; with `follow` (a serving process), follow the store's change feed from there."""
        # the bilingual dictionary takes seconds to read: read it beside the indexes' start, not in the first
        # English request
        threading.Thread(target=default_lexicon, name="lexicon-load", daemon=True).start()
        self.indexer.start(background_save_s=background_save_s)
        if follow:
            self.follower = FeedFollower(self.indexer, self.settings)
            self.follower.start()

    def save(self) -> None:
        self.indexer.save()

    def close(self) -> None:
        if self.follower is not None:
            self.follower.close()
        self.indexer.close()

    def swap_encoder(self, encoder: Encoder) -> dict[str, str | int | float]:
        return self.indexer.swap_encoder(encoder)

    @property
    def encoder(self) -> Encoder:
        return self.indexer.encoder

    @property
    def closing(self) -> threading.Event:
        return self.indexer.closing

    @property
    def supply(self) -> IndexPair:
        return self.indexer.supply

    @property
    def demand(self) -> IndexPair:
        return self.indexer.demand

    @property
    def resources(self) -> Catalog:
        return self.indexer.resources

    @property
    def demand_catalog(self) -> Catalog:
        return self.indexer.demand_catalog

    # ------------------------------------------------------------------ change events (ChangeListener)
    def resources_changed(self, resources: Sequence[Resource]) -> None:
        self.indexer.resources_changed(resources)

    def resources_removed(self, ids: Sequence[int]) -> None:
        self.indexer.resources_removed(ids)

    def demand_changed(self, needs: Sequence[Need], enterprises: Sequence[Enterprise]) -> None:
        self.indexer.demand_changed(needs, enterprises)

    def demand_removed(self, need_ids: Sequence[int], enterprise_ids: Sequence[int]) -> None:
        self.indexer.demand_removed(need_ids, enterprise_ids)
