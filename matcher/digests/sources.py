"""Candidate sources for digests: the match engine (batched query encoding, then its match pipeline) and an
exact keyword scorer over the store, the reference used by tests and tiny deployments."""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from embeddings.text import tokenize
from matcher.digests.compose import DemandQuery, Suggestion
from matcher.domain.tables import Resource, as_utc
from matcher.domain.visibility import visible_to
from matcher.matching.engine import MatchEngine
from matcher.matching.query import MatchQuery
from matcher.matching.retrieval import QueryVector, search_text


def _expires(r: Resource) -> date | None:
    deadline = None
    if r.kind == "scenario":
        raw = (r.details or {}).get("deadline")
        try:
            deadline = date.fromisoformat(str(raw)[:10]) if raw else None
        except ValueError:
            deadline = None
    return min((d for d in (r.valid_until, deadline) if d is not None), default=None)


class KeywordSource:
    """Scores every visible resource by the share of the query's terms it contains (exact, O(resources))."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self._rows: list[tuple[Resource, set[str], date | None, float]] | None = None

    def prepare(self, queries: Sequence[DemandQuery]) -> None:
        with Session(self.db) as session:
            rows = list(session.exec(select(Resource)))
        self._rows = [
            (r, set(tokenize(f"{r.title}\n{r.description}")), _expires(r), as_utc(r.updated_at).timestamp())
            for r in rows
        ]

    def suggest(self, query: DemandQuery) -> list[Suggestion]:
        if self._rows is None:
            self.prepare([query])
        q = set(tokenize(query.text))
        if not q:
            return []
        since = query.since.timestamp() if query.since else -math.inf
        zh = query.language == "zh"
        out = []
        for r, terms, expires, stamp in self._rows or []:
            if r.status != "active" or not visible_to(r, query.tenant):
                continue
            if r.id in query.exclude or stamp < since or (query.kinds and r.kind not in query.kinds):
                continue
            if expires is not None and expires < query.today:
                continue
            shared = sorted(q & terms, key=lambda t: (-len(t), t))
            score = len(shared) / len(q)
            if score < query.min_score and r.id not in query.pinned:
                continue
            terms_text = ("、" if zh else ", ").join(shared[:4])
            summary = (
                f"关键词匹配：{terms_text}；匹配度 {score:.0%}"
                if zh
                else f"shared terms: {terms_text}; match {score:.0%}"
            )
            out.append(Suggestion(r.id, score, r.kind, r.title, r.provider, expires, summary))
        out.sort(key=lambda s: (-s.score, s.resource_id))
        return out[: query.k]


_CONTROLLER: Any = None  # threadpoolctl's controller, made on first use (it inspects the loaded libraries)


def _one_blas_thread() -> AbstractContextManager:
    """Per-query work is many small mat-vecs: multi-threaded BLAS only adds thread hand-offs to them, and on a
    busy machine its spinning threads make one query 10-20x slower (measured: 0.3 ms -> 7.8 ms for a 10k x 256
    mat-vec on 2 shared cores). Batched query encoding is not run under this limit."""
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController  # comes with scikit-learn
    except ImportError:  # pragma: no cover
        return nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


class EngineSource:
    """The match pipeline (`MatchEngine.match`), restricted to resources updated since the last digest.

    `prepare` encodes every query text in one batched call; `suggest` then runs the engine's match for one
    query with that vector: the same filters, hybrid retrieval, ranking and explanation as POST /v1/match, with
    the `since` filter, no interleaving or provider limit, and the explanation in the enterprise's language.

    Nothing per candidate is read from the store: kind, title, provider and expiry come from the engine's
    catalog, the matched terms of the explanation from its lexical index (both kept current by change events)."""

    def __init__(self, engine: MatchEngine, *, batch_size: int = 256) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self._vectors: dict[str, np.ndarray] = {}
        self._model_id: str | None = None

    def prepare(self, queries: Sequence[DemandQuery]) -> None:
        wanted = set(q.text for q in queries)
        encoder = self.engine.encoder  # the encoder of the index the searches will read
        if encoder.model_id != self._model_id:  # the engine switched encoders: earlier vectors are void
            self._vectors, self._model_id = {}, encoder.model_id
        # vectors of an earlier batch are not needed again (each enterprise is composed once per run)
        self._vectors = {t: v for t, v in self._vectors.items() if t in wanted}
        texts = [t for t in dict.fromkeys(q.text for q in queries) if t not in self._vectors]
        for i in range(0, len(texts), self.batch_size):
            chunk = texts[i : i + self.batch_size]
            vecs = encoder.encode_queries([search_text(t) for t in chunk])
            self._vectors.update(zip(chunk, np.asarray(vecs, dtype=np.float32), strict=True))

    def suggest(self, query: DemandQuery) -> list[Suggestion]:
        with _one_blas_thread():
            return self._suggest(query)

    def _suggest(self, query: DemandQuery) -> list[Suggestion]:
        vec = self._vectors.get(query.text)
        outcome = self.engine.match(
            MatchQuery(
                need_id=query.need_id,
                enterprise_id=None if query.need_id is not None else query.enterprise_id,
                kinds=query.kinds,
                k=query.k,
                min_score=query.min_score,
                filters={"today": query.today},
                per_provider=0,
                exclude_ids=query.exclude,
                since=None if query.since is None else query.since.timestamp(),
                pool=max(50, 4 * query.k),
                highlights=False,
                language=query.language,
                interleave=False,
            ),
            tenant=query.tenant,
            vector=None
            if vec is None or self._model_id is None
            else QueryVector(self._model_id, query.text, vec),
        )
        out = []
        for c in outcome.candidates:
            m = c.meta
            summary = str(outcome.explanations[c.id]["summary"])
            out.append(Suggestion(c.id, c.score, m.kind, m.title, m.provider, m.expires, summary))
        return out
