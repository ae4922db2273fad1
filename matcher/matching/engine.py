"""The match engine: hybrid retrieval over the vector and lexical indexes, hard filters inside retrieval,
soft fit, ranking to a calibrated score, explanations; both directions (need -> resources, resource -> demand).

The store is the source of truth; the engine's indexes and catalogs are caches it rebuilds or reconciles at
start and keeps current through change events. Framework-free: the API adapts it."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from embeddings.encoders.base import Encoder
from embeddings.text import has_cjk, lexical_terms, tokenize
from matcher.domain.tables import Enterprise, Need, Resource, as_utc
from matcher.domain.taxonomy import Taxonomy
from matcher.domain.visibility import is_public, visible_to
from matcher.errors import NotFound, ValidationFailed
from matcher.indexing.catalog import Catalog, Meta
from matcher.indexing.documents import enterprise_text, need_text, resource_text
from matcher.indexing.pair import IndexPair
from matcher.matching.explain import explain
from matcher.matching.fit import Ask, constraints, fit_features
from matcher.matching.interleave import CANDIDATE, team_draft
from matcher.matching.ranker import Ranker, TransparentRanker
from matcher.settings import Settings

logger = logging.getLogger(__name__)

DEMAND_NEED, DEMAND_ENTERPRISE = 0, 1


def demand_key(kind: int, record_id: int) -> int:
    """Needs and enterprises share one demand-side index: the low bit says which."""
    return record_id * 2 + kind


def split_demand_key(key: int) -> tuple[int, int]:
    return key & 1, key >> 1


@dataclass
class MatchQuery:
    text: str | None = None
    need_id: int | None = None
    enterprise_id: int | None = None
    kinds: tuple[str, ...] = ()
    filters: dict[str, Any] = field(default_factory=dict)
    k: int = 10
    min_score: float | None = None
    dense_weight: float | None = None
    per_provider: int | None = None  # 0 = no limit
    bundle: bool = False  # best few of each kind
    per_kind: int = 3
    explain: bool = True
    exclude_ids: tuple[int, ...] = ()


@dataclass
class Candidate:
    id: int
    meta: Meta
    dense: float
    lexical: float
    relevance: float = 0.0
    fit: dict[str, float | None] = field(default_factory=dict)
    score: float = 0.0
    # the score's parts for the explanation: built on first use, since most candidates are never shown
    _describe: Callable[[Candidate], dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    _components: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def features(self) -> dict[str, float | None]:
        """The row a ranker scores (and an impression logs): retrieval scores and fit features."""
        return {"dense": self.dense, "lexical": self.lexical, "relevance": self.relevance, **self.fit}

    @property
    def components(self) -> dict[str, Any]:
        if self._components is None:
            self._components = self._describe(self) if self._describe is not None else {}
        return self._components


@dataclass
class MatchOutcome:
    request_id: str
    query_text: str
    ask: Ask
    candidates: list[Candidate]
    explanations: dict[int, dict[str, Any]]
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


@dataclass(frozen=True)
class Trial:
    """A candidate ranker under an interleaved trial, and the share of match requests that interleave it."""

    ranker: Any
    share: float


class Relevance:
    """Fuses the dense and lexical similarities into one text relevance in [0, 1], comparable across queries.

    dense: cosine (normalised vectors); lexical: BM25 divided by the query's own upper bound, so both are
    absolute rather than per-query min-max. relevance = sigmoid((w*dense + (1-w)*lexical - mid) / scale)."""

    def __init__(self, dense_weight: float = 0.1, mid: float = 0.2, scale: float = 0.06) -> None:
        self.dense_weight = dense_weight
        self.mid = mid
        self.scale = scale

    def fused(self, dense: float, lexical: float, w: float | None = None) -> float:
        w = self.dense_weight if w is None else w
        return w * max(0.0, dense) + (1 - w) * lexical

    def __call__(self, dense: float, lexical: float, w: float | None = None) -> float:
        x = (self.fused(dense, lexical, w) - self.mid) / self.scale
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


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
    ) -> None:
        self.settings = settings
        self.db = db
        self.taxonomy = taxonomy
        self.ranker: Ranker = ranker or TransparentRanker()
        # a ranker on interleaved trial (training/rankers/trial.py); set and cleared by the registry follower
        self.trial: Trial | None = None
        self._trial_rng = random.Random()
        self.relevance = relevance or Relevance(settings.dense_weight)
        self.supply = IndexPair("supply", encoder, settings)
        self.demand = IndexPair("demand", encoder, settings)
        self.resources = Catalog()
        self.demand_catalog = Catalog()
        self._write_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._dirty = 0
        self._saver: threading.Thread | None = None
        self._closing = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, background_save_s: float = 30.0) -> None:
        """Load persisted indexes, reconcile them with the store, and start the periodic saver."""
        t0 = time.perf_counter()
        self.supply.load_or_create()
        self.demand.load_or_create()
        n_res, stale_s, n_dem, stale_d = self._sync(self.supply, self.demand, catalogs=True)
        if stale_s or stale_d:
            self.save()
        logger.info(
            "match engine ready: %d resources (%d re-indexed), %d demand records (%d re-indexed) in %.1fs",
            n_res,
            stale_s,
            n_dem,
            stale_d,
            time.perf_counter() - t0,
        )
        if background_save_s > 0:
            self._saver = threading.Thread(target=self._save_loop, args=(background_save_s,), daemon=True)
            self._saver.start()

    def _sync(
        self, supply: IndexPair, demand: IndexPair, *, catalogs: bool = False
    ) -> tuple[int, int, int, int]:
        """Make `supply` and `demand` hold exactly the store's records: drop what the store no longer has,
        (re)index what is new or changed since their stamps. Returns (resources, re-indexed, demand records,
        re-indexed). With `catalogs`, the filter catalogs are loaded from the same read."""
        with Session(self.db) as session:
            resources = list(session.exec(select(Resource)))
            needs = list(session.exec(select(Need)))
            enterprises = list(session.exec(select(Enterprise)))
        if catalogs:
            self.resources.upsert(self._resource_meta(r) for r in resources)
            self.demand_catalog.upsert(self._demand_metas(needs, enterprises))
        stale_s = supply.reconcile({r.id: self._stamp(r) for r in resources})
        self._index_resources([r for r in resources if r.id in stale_s], pair=supply)
        stamps = {demand_key(DEMAND_NEED, n.id): self._stamp(n) for n in needs}
        stamps.update({demand_key(DEMAND_ENTERPRISE, e.id): self._stamp(e) for e in enterprises})
        stale_d = demand.reconcile(stamps)
        self._index_demand(
            [n for n in needs if demand_key(DEMAND_NEED, n.id) in stale_d],
            [e for e in enterprises if demand_key(DEMAND_ENTERPRISE, e.id) in stale_d],
            pair=demand,
        )
        return len(resources), len(stale_s), len(stamps), len(stale_d)

    def swap_encoder(self, encoder: Encoder) -> dict[str, Any]:
        """Serve `encoder` without stopping: both indexes are rebuilt with it from the store while the current
        ones keep answering, what changed meanwhile is caught up with writes held, then encoder and indexes
        switch together (a request reads one index pair, and each pair encodes queries with its own encoder)."""
        with self._swap_lock:
            t0 = time.perf_counter()
            supply = IndexPair("supply", encoder, self.settings)
            demand = IndexPair("demand", encoder, self.settings)
            n_res, _, n_dem, _ = self._sync(supply, demand)
            with self._write_lock:
                _, caught_s, _, caught_d = self._sync(supply, demand)
                old = self.encoder.model_id
                self.supply, self.demand = supply, demand
                self._dirty += 1
            self.save()
            out = {
                "from": old,
                "to": encoder.model_id,
                "resources": n_res,
                "demand_records": n_dem,
                "caught_up": caught_s + caught_d,
                "seconds": round(time.perf_counter() - t0, 1),
            }
            logger.info("encoder switched: %s", out)
            return out

    @property
    def encoder(self) -> Encoder:
        """The encoder serving now: the one the index pairs were built with."""
        return self.supply.encoder

    @property
    def closing(self) -> threading.Event:
        """Set when the engine closes: background helpers wait on it."""
        return self._closing

    def _save_loop(self, every: float) -> None:
        while not self._closing.wait(every):
            if self._dirty:
                try:
                    self.save()
                except Exception:  # noqa: BLE001 - the next save or the start-up reconcile repairs it
                    logger.exception("periodic index save failed")

    def save(self) -> None:
        with self._save_lock:  # one save at a time: the periodic one never interleaves with a swap's
            with self._write_lock:
                self._dirty = 0
                supply, demand = self.supply, self.demand
                supply_snapshot = supply.snapshot_stamps()
                demand_snapshot = demand.snapshot_stamps()
            supply.save(supply_snapshot)
            demand.save(demand_snapshot)

    def close(self) -> None:
        self._closing.set()
        if self._saver is not None:
            self._saver.join(timeout=5)
        try:
            self.save()
        except Exception:  # noqa: BLE001
            logger.exception("index save at shutdown failed; the next start reconciles from the store")

    # ------------------------------------------------------------------ metadata
    @staticmethod
    def _stamp(row: Any) -> float:
        ts = as_utc(row.updated_at)
        return ts.timestamp() if ts else 0.0

    def _resource_meta(self, r: Resource) -> Meta:
        d = r.details or {}
        deadline = _as_date(d.get("deadline")) if r.kind == "scenario" else None
        expires = min((x for x in (r.valid_until, deadline) if x is not None), default=None)
        return Meta(
            id=r.id,
            kind=r.kind,
            tenant=r.tenant_id,
            public=is_public(r.visibility),
            active=r.status == "active",
            title=r.title,
            industries=frozenset(self.taxonomy.expand(r.industries or [])),
            own_industries=tuple(r.industries or ()),
            region=r.region,
            expires=expires,
            deadline=deadline,
            stages=tuple(d.get("stages") or ()),
            ticket_min=d.get("ticket_min"),
            ticket_max=d.get("ticket_max"),
            budget=d.get("budget"),
            trl=d.get("trl"),
            provider=r.provider,
            updated=self._stamp(r),
            extra={"price": d.get("price")},
        )

    def _demand_metas(self, needs: Iterable[Need], enterprises: Iterable[Enterprise]) -> list[Meta]:
        out = []
        for n in needs:
            out.append(
                Meta(
                    id=demand_key(DEMAND_NEED, n.id),
                    kind="need",
                    tenant=n.tenant_id,
                    public=is_public(n.visibility),
                    active=n.status == "open",
                    title=n.title,
                    industries=frozenset(self.taxonomy.expand(n.industries or [])),
                    own_industries=tuple(n.industries or ()),
                    region=n.region,
                    expires=n.deadline,
                    amount=n.amount,
                    trl_min=n.trl_min,
                    kinds_sought=tuple(n.kinds or ()),
                    updated=self._stamp(n),
                    extra={"enterprise_id": n.enterprise_id},
                )
            )
        for e in enterprises:
            out.append(
                Meta(
                    id=demand_key(DEMAND_ENTERPRISE, e.id),
                    kind="enterprise",
                    tenant=e.tenant_id,
                    public=is_public(e.visibility),
                    active=True,
                    title=e.name,
                    industries=frozenset(self.taxonomy.expand(e.industries or [])),
                    own_industries=tuple(e.industries or ()),
                    region=e.region,
                    expires=None,
                    stage=e.stage,
                    updated=self._stamp(e),
                    extra={"enterprise_id": e.id},
                )
            )
        return out

    # ------------------------------------------------------------------ change events (ChangeListener)
    def resource_document(self, r: Resource) -> str:
        return resource_text(
            kind=r.kind,
            title=r.title,
            description=r.description,
            industries=list(r.industries or []),
            details=r.details or {},
            taxonomy=self.taxonomy,
        )

    def _index_resources(
        self, rows: Sequence[Resource], *, show_progress: bool = False, pair: IndexPair | None = None
    ) -> None:
        if not rows:
            return
        (pair or self.supply).upsert(
            [r.id for r in rows],
            [self.resource_document(r) for r in rows],
            [self._stamp(r) for r in rows],
            show_progress=show_progress,
        )

    def _index_demand(
        self, needs: Sequence[Need], enterprises: Sequence[Enterprise], *, pair: IndexPair | None = None
    ) -> None:
        keys, texts, stamps = [], [], []
        for n in needs:
            keys.append(demand_key(DEMAND_NEED, n.id))
            texts.append(
                need_text(
                    title=n.title,
                    description=n.description,
                    industries=list(n.industries or []),
                    taxonomy=self.taxonomy,
                )
            )
            stamps.append(self._stamp(n))
        for e in enterprises:
            keys.append(demand_key(DEMAND_ENTERPRISE, e.id))
            texts.append(
                enterprise_text(
                    name=e.name,
                    description=e.description,
                    industries=list(e.industries or []),
                    taxonomy=self.taxonomy,
                )
            )
            stamps.append(self._stamp(e))
        if keys:
            (pair or self.demand).upsert(keys, texts, stamps)

    def resources_changed(self, resources: Sequence[Resource], *, show_progress: bool = False) -> None:
        with self._write_lock:
            self.resources.upsert(self._resource_meta(r) for r in resources)
            self._index_resources(resources, show_progress=show_progress)
            self._dirty += len(resources)

    def resources_removed(self, ids: Sequence[int]) -> None:
        with self._write_lock:
            self.resources.remove(ids)
            self.supply.remove(list(ids))
            self._dirty += len(ids)

    def demand_changed(self, needs: Sequence[Need], enterprises: Sequence[Enterprise]) -> None:
        with self._write_lock:
            self.demand_catalog.upsert(self._demand_metas(needs, enterprises))
            self._index_demand(needs, enterprises)
            self._dirty += len(needs) + len(enterprises)

    def demand_removed(self, need_ids: Sequence[int], enterprise_ids: Sequence[int]) -> None:
        keys = [demand_key(DEMAND_NEED, i) for i in need_ids] + [
            demand_key(DEMAND_ENTERPRISE, i) for i in enterprise_ids
        ]
        with self._write_lock:
            self.demand_catalog.remove(keys)
            self.demand.remove(keys)
            self._dirty += len(keys)

    # ------------------------------------------------------------------ queries
    def _validate_text(self, text: str) -> str:
        text = (text or "").strip()
        if not text:
            raise ValidationFailed(
                "text: the query text is empty", errors=[{"field": "text", "message": "empty"}]
            )
        if len(text) > self.settings.max_query_chars:
            raise ValidationFailed(
                f"text: the query text has {len(text)} characters; the limit is {self.settings.max_query_chars}",
                errors=[{"field": "text", "message": "too long"}],
            )
        return text

    def _load_need(self, session: Session, need_id: int, tenant: str) -> Need:
        need = session.get(Need, need_id)
        if need is None or not visible_to(need, tenant):
            raise NotFound(f"need {need_id} not found")
        return need

    def _load_enterprise(self, session: Session, enterprise_id: int, tenant: str) -> Enterprise:
        ent = session.get(Enterprise, enterprise_id)
        if ent is None or not visible_to(ent, tenant):
            raise NotFound(f"enterprise {enterprise_id} not found")
        return ent

    def build_ask(self, q: MatchQuery, tenant: str) -> tuple[str, Ask, tuple[str, ...]]:
        """Resolve need / enterprise / free text into query text, the structured ask and the kinds sought."""
        f = q.filters
        kinds = tuple(q.kinds)
        text = None
        industries: list[str] = []
        region = stage = None
        amount = trl_min = None
        if q.need_id is not None:
            with Session(self.db) as session:
                need = self._load_need(session, q.need_id, tenant)
                ent = session.get(Enterprise, need.enterprise_id)
            text = "\n".join(p for p in (need.title, need.description) if p)
            industries = list(need.industries or [])
            region, amount, trl_min = need.region, need.amount, need.trl_min
            stage = ent.stage if ent is not None else None
            if not industries and ent is not None:
                industries = list(ent.industries or [])
            kinds = kinds or tuple(need.kinds or ())
        elif q.enterprise_id is not None:
            with Session(self.db) as session:
                ent = self._load_enterprise(session, q.enterprise_id, tenant)
            text = "\n".join(p for p in (ent.name, ent.description) if p)
            industries, region, stage = list(ent.industries or []), ent.region, ent.stage
        if q.text:
            text = (
                (q.text + "\n" + text) if text and q.need_id is None and q.enterprise_id is None else q.text
            )
        text = self._validate_text(text or "")
        if f.get("industries"):
            industries = list(f["industries"])
        region = f.get("region", region)
        stage = f.get("stage", stage)
        amount = f.get("amount", amount)
        trl_min = f.get("trl_min", trl_min)
        if not industries:
            # free text: the taxonomy terms it names are its tags (the bilingual bridge)
            industries = self.taxonomy.tags_in_text(text)
        ask = Ask(
            industries=frozenset(self.taxonomy.expand(industries)),
            own_industries=tuple(industries),
            region=region,
            stage=stage,
            amount=amount,
            trl_min=trl_min,
            trl_max=f.get("trl_max"),
            kinds=kinds,
            today=f.get("today") or date.today(),
        )
        return text, ask, kinds

    def dense_weight_for(self, text: str) -> float:
        """Measured per language (docs/encoders.md): the default encoder helps Chinese, not English."""
        return self.relevance.dense_weight if has_cjk(text) else self.settings.dense_weight_latin

    def retrieve(
        self,
        pair: IndexPair,
        catalog: Catalog,
        text: str,
        tokens: list[str],
        allowed: np.ndarray | None,
        n: int,
        dense_weight: float,
        qvec: np.ndarray | None = None,
    ) -> list[Candidate]:
        """Candidates from both indexes restricted to `allowed`, each with both similarities.

        `tokens` are `tokenize(text)`; the lexical index is queried with them plus the text's character
        bigrams (`lexical_terms`), as its documents were indexed."""
        if dense_weight > 0 and (qvec is None or qvec.shape[-1] != pair.encoder.dimension):
            qvec = pair.encoder.encode_queries([text])[0]  # the pair's own encoder: consistent across a swap
        terms = lexical_terms(text, tokens)
        upper = pair.upper_bound(terms)
        dense_hits = pair.dense_search(qvec, n, allowed) if dense_weight > 0 else []
        lex_hits = pair.lexical_search(terms, n, allowed, upper=upper) if dense_weight < 1 else []
        ids = list(dict.fromkeys([i for i, _ in dense_hits] + [i for i, _ in lex_hits]))
        ids = [i for i in ids if catalog.get(i) is not None]
        if not ids:
            return []
        # each side scores the candidates only the other side found
        dense = dict(dense_hits)
        missing = [i for i in ids if i not in dense]
        if missing and dense_weight > 0:
            dense.update(pair.dense_scores(qvec, missing))
        lex = dict(lex_hits)
        missing = [i for i in ids if i not in lex]
        if missing:
            lex.update(pair.lexical_scores(terms, missing, upper=upper))
        return [
            Candidate(
                id=i, meta=catalog.get(i), dense=float(dense.get(i, 0.0)), lexical=float(lex.get(i, 0.0))
            )
            for i in ids
        ]

    def rank(
        self,
        cands: list[Candidate],
        ask: Ask | None,
        w: float,
        *,
        fit_of: Callable[[Meta, float], dict[str, float | None]] | None = None,
        ranker: Ranker | None = None,
    ) -> None:
        """Relevance, fit, ranker score and score components for each candidate; best first.

        `fit_of(meta, now)` replaces the need-side fit (the reverse direction passes its own); `ranker`
        defaults to the one in service."""
        ranker = ranker or self.ranker  # read once: a switch in flight never mixes two rankers in one list
        now = time.time()
        rows = []
        for c in cands:
            c.relevance = self.relevance(c.dense, c.lexical, w)
            c.fit = fit_of(c.meta, now) if fit_of is not None else fit_features(ask, c.meta, now=now)
            rows.append(c.features())
        scores = ranker.score(rows) if rows else np.zeros(0)
        parts = getattr(ranker, "components", None)
        relevance = self.relevance

        def describe(c: Candidate) -> dict[str, Any]:
            comp: dict[str, Any] = {
                "dense": round(c.dense, 4),
                "lexical": round(c.lexical, 4),
                "fused": round(relevance.fused(c.dense, c.lexical, w), 4),
                "relevance": round(c.relevance, 4),
                "fit_features": {k: (None if v is None else round(v, 3)) for k, v in c.fit.items()},
                "dense_weight": w,
                "ranker": ranker.version,
                "score": round(c.score, 4),
            }
            if parts is not None:
                comp["fit"] = round(parts(c.features())["fit"], 4)
            return comp

        for c, s in zip(cands, scores, strict=True):
            c.score = float(min(1.0, max(0.0, s)))
            c._describe = describe
            c._components = None
        cands.sort(key=lambda c: (-c.score, c.id))

    @staticmethod
    def _diversify(cands: list[Candidate], per_provider: int, k: int) -> list[Candidate]:
        if per_provider <= 0:
            return cands[:k]
        seen: dict[str, int] = {}
        out = []
        for c in cands:
            p = (c.meta.provider or "").strip().lower()
            if p:
                if seen.get(p, 0) >= per_provider:
                    continue
                seen[p] = seen.get(p, 0) + 1
            out.append(c)
            if len(out) >= k:
                break
        return out

    def _check_k(self, k: int) -> None:
        if k < 1 or k > self.settings.max_k:
            raise ValidationFailed(
                f"k: must be between 1 and {self.settings.max_k} (got {k})",
                errors=[{"field": "k", "message": f"must be between 1 and {self.settings.max_k}"}],
            )

    def match(self, q: MatchQuery, *, tenant: str) -> MatchOutcome:
        """need / enterprise / free text -> resources, ranked, filtered, explained."""
        self._check_k(q.k)
        t0 = time.perf_counter()
        text, ask, kinds = self.build_ask(q, tenant)
        f = q.filters
        w = self.dense_weight_for(text) if q.dense_weight is None else q.dense_weight
        mask = self.resources.mask(
            tenant=tenant,
            kinds=kinds or None,
            today=ask.today,
            industries=f.get("industries") and self.taxonomy.expand(f["industries"]),
            regions=[f["region"]] if f.get("region") else None,
            include_inactive=bool(f.get("include_inactive")),
            stage=ask.stage if ("fund" in kinds or not kinds) else None,
            amount=ask.amount if f.get("amount") is not None or q.need_id is not None else None,
            trl_min=ask.trl_min,
            trl_max=ask.trl_max,
            exclude=q.exclude_ids,
        )
        allowed = self.resources.allowed_ids(mask)
        t1 = time.perf_counter()
        tokens = tokenize(text)
        k_total = q.k if not q.bundle else q.per_kind * 4
        n_cand = max(100, 5 * k_total)
        cands = self.retrieve(self.supply, self.resources, text, tokens, allowed, n_cand, w)
        t2 = time.perf_counter()
        ranker, trial = self.ranker, self.trial  # read once: a switch in flight never mixes two rankers
        self.rank(cands, ask, w, ranker=ranker)
        min_score = self.settings.default_min_score if q.min_score is None else q.min_score
        cands = [c for c in cands if c.score >= min_score]
        per_provider = self.settings.max_per_provider if q.per_provider is None else q.per_provider
        teams: dict[int, str] | None = None
        if trial is not None and not q.bundle and cands and self._trial_rng.random() < trial.share:
            cands, teams = self._interleave(cands, trial.ranker)
            cands = self._diversify(cands, per_provider, q.k)
            teams = {c.id: teams[c.id] for c in cands}
        elif q.bundle:
            picked: list[Candidate] = []
            for kind in kinds or ("result", "scenario", "fund", "incubator"):
                picked += self._diversify([c for c in cands if c.meta.kind == kind], per_provider, q.per_kind)
            cands = sorted(picked, key=lambda c: (-c.score, c.id))
        else:
            cands = self._diversify(cands, per_provider, q.k)
        t3 = time.perf_counter()
        explanations = self._explain(text, tokens, ask, cands, tenant) if q.explain else {}
        t4 = time.perf_counter()
        return MatchOutcome(
            request_id=uuid.uuid4().hex,
            query_text=text,
            ask=ask,
            candidates=cands,
            explanations=explanations,
            model_version=ranker.version,
            timings_ms={
                "filter": round((t1 - t0) * 1000, 2),
                "retrieve": round((t2 - t1) * 1000, 2),
                "rank": round((t3 - t2) * 1000, 2),
                "explain": round((t4 - t3) * 1000, 2),
            },
            need_id=q.need_id,
            enterprise_id=q.enterprise_id,
            teams=teams,
            trial_version=None if teams is None else str(trial.ranker.version),
        )

    def _interleave(
        self, cands: list[Candidate], candidate: Ranker
    ) -> tuple[list[Candidate], dict[int, str]]:
        """`cands` (ranked by the ranker in service) team-draft interleaved with `candidate`'s order of the same
        candidates. Scores stay those of the ranker in service; the order is the interleaving's."""
        theirs = np.asarray(candidate.score([c.features() for c in cands]), dtype=np.float64)
        order_b = [cands[i].id for i in np.lexsort(([c.id for c in cands], -theirs))]
        merged = team_draft([c.id for c in cands], order_b, len(cands), self._trial_rng)
        by_id = {c.id: c for c in cands}
        return [by_id[i] for i, _ in merged], dict(merged)

    def _explain(
        self, text: str, tokens: list[str], ask: Ask, cands: list[Candidate], tenant: str
    ) -> dict[int, dict[str, Any]]:
        if not cands:
            return {}
        with Session(self.db) as session:
            rows = {
                r.id: r for r in session.exec(select(Resource).where(Resource.id.in_([c.id for c in cands])))
            }
        out = {}
        for c in cands:
            r = rows.get(c.id)
            if r is None:
                continue
            # the query words the document holds, read off the lexical index (no re-tokenising)
            doc_tokens = set(self.supply.lexical.matched_terms(tokens, c.id))
            out[c.id] = explain(
                query_text=text,
                query_tokens=tokens,
                doc_tokens=doc_tokens,
                doc_fields={"title": r.title, "description": r.description},
                ask_tags=ask.own_industries,
                doc_tags=tuple(self.taxonomy.expand(r.industries or [])),
                constraints=constraints(ask, c.meta, caller_tenant=tenant),
                components=c.components,
                taxonomy=self.taxonomy,
                language="en" if r.language == "en" else "zh",
            )
        return out

    def reverse(
        self,
        resource_id: int,
        *,
        tenant: str,
        k: int = 10,
        min_score: float | None = None,
        include: Sequence[str] = ("need", "enterprise"),
    ) -> MatchOutcome:
        """resource (scenario, fund, incubator, result) -> the enterprises and open needs it fits."""
        self._check_k(k)
        t0 = time.perf_counter()
        with Session(self.db) as session:
            r = session.get(Resource, resource_id)
            if r is None or not visible_to(r, tenant):
                raise NotFound(f"resource {resource_id} not found")
            text = self.resource_document(r)
        meta = self._resource_meta(r)
        ask = Ask(
            industries=meta.industries,
            own_industries=meta.own_industries,
            region=meta.region,
            kinds=(r.kind,),
        )
        kinds = tuple(x for x in include if x in ("need", "enterprise"))
        mask = self.demand_catalog.mask(
            tenant=tenant, kinds=kinds or None, today=ask.today, sought_kind=r.kind
        )
        if r.kind == "fund":
            # the fund's stages and tickets filter the demand side (unknowns pass)
            mask &= self._fund_demand_mask(meta)
        allowed = self.demand_catalog.allowed_ids(mask)
        tokens = tokenize(text)
        w = self.dense_weight_for(text)
        cands = self.retrieve(self.demand, self.demand_catalog, text, tokens, allowed, max(100, 5 * k), w)
        ranker = self.ranker  # read once, as in `match`
        self.rank(cands, None, w, fit_of=lambda m, now: _reverse_fit(meta, m, now), ranker=ranker)
        ms = self.settings.default_min_score if min_score is None else min_score
        cands = [c for c in cands if c.score >= ms][:k]
        explanations = {}
        for c in cands:
            doc_tokens = set(tokenize(c.meta.title))
            cons = []
            if c.meta.kind == "need":
                cons = _reverse_constraints(meta, c.meta)
            explanations[c.id] = explain(
                query_text="",
                query_tokens=tokens,
                doc_tokens=doc_tokens,
                doc_fields={"title": c.meta.title},
                ask_tags=meta.own_industries,
                doc_tags=tuple(c.meta.industries),
                constraints=cons,
                components=c.components,
                taxonomy=self.taxonomy,
            )
        return MatchOutcome(
            request_id=uuid.uuid4().hex,
            query_text=text,
            ask=ask,
            candidates=cands,
            explanations=explanations,
            model_version=ranker.version,
            timings_ms={"total": round((time.perf_counter() - t0) * 1000, 2)},
        )

    def _fund_demand_mask(self, fund: Meta) -> np.ndarray:
        cat = self.demand_catalog
        with cat._lock:
            n = cat._n
            ok = np.ones(n, dtype=bool)
            for pos in range(n):
                i = int(cat.ids[pos])
                m = cat.rows.get(i)
                if m is None:
                    continue
                if m.kind == "enterprise" and fund.stages and m.stage and m.stage not in fund.stages:
                    ok[pos] = False
                if m.kind == "need" and m.amount is not None:
                    if (fund.ticket_min is not None and m.amount < fund.ticket_min) or (
                        fund.ticket_max is not None and m.amount > fund.ticket_max
                    ):
                        ok[pos] = False
            return ok


def _reverse_fit(resource: Meta, cand: Meta, now: float) -> dict[str, float | None]:
    ask = Ask(
        industries=cand.industries,
        own_industries=cand.own_industries,
        region=cand.region,
        stage=cand.stage,
        amount=cand.amount,
        trl_min=cand.trl_min,
    )
    f = fit_features(ask, resource, now=now)
    f["recency"] = math.exp(-max(0.0, (now - cand.updated) / 86400) / 180) if cand.updated else None
    f["deadline"] = None
    return f


def _reverse_constraints(resource: Meta, need: Meta) -> list[dict[str, Any]]:
    ask = Ask(
        industries=need.industries,
        own_industries=need.own_industries,
        region=need.region,
        amount=need.amount,
        trl_min=need.trl_min,
        kinds=need.kinds_sought,
    )
    return constraints(ask, resource, caller_tenant=resource.tenant)


def _as_date(v: Any) -> date | None:
    if v is None or isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError:
        return None
