"""Standing matches: when resources change, find the open needs each one now fits above the notify threshold
(the engine's reverse match), record the new pairs once, and notify the needs' tenants by webhook."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from matcher.digests.compose import resource_url
from matcher.domain.tables import Resource
from matcher.domain.visibility import visible_to
from matcher.indexing.demand_keys import DEMAND_NEED, split_demand_key
from matcher.matching.engine import MatchEngine
from matcher.notify.delivery import WebhookDispatcher
from matcher.notify.tables import StandingMatch
from matcher.settings import Settings

logger = logging.getLogger(__name__)


class StandingMatchListener:
    """A ChangeListener; subscribe it after the engine so the engine's indexes already hold the change."""

    def __init__(
        self,
        engine: MatchEngine,
        db: Engine,
        settings: Settings,
        dispatcher: WebhookDispatcher,
        *,
        k: int = 50,
    ) -> None:
        self.engine = engine
        self.db = db
        self.settings = settings
        self.dispatcher = dispatcher
        self.k = k

    def resources_changed(self, resources: Sequence[Resource]) -> None:
        ids = [r.id for r in resources if r.status == "active"]
        if ids:
            self.dispatcher.submit(self.process, ids)

    def process(self, resource_ids: Sequence[int]) -> list[StandingMatch]:
        created: list[StandingMatch] = []
        for rid in resource_ids:
            with Session(self.db, expire_on_commit=False) as session:
                r = session.get(Resource, rid)
                if r is None or r.status != "active":
                    continue
                outcome = self.engine.reverse(
                    rid,
                    tenant=r.tenant_id,
                    k=min(self.k, self.settings.max_k),  # a deployment may cap k below the default
                    min_score=self.settings.notify_threshold,
                    include=("need",),
                )
                found = []
                for c in outcome.candidates:
                    kind, need_id = split_demand_key(c.id)
                    if kind != DEMAND_NEED or c.score < self.settings.notify_threshold:
                        continue
                    if not visible_to(r, c.meta.tenant):
                        continue  # a private resource is only ever shown to its own tenant
                    summary = (outcome.explanations.get(c.id) or {}).get("summary", "")
                    found.append((need_id, c, summary))
                known = (
                    set(
                        session.exec(
                            select(StandingMatch.need_id).where(
                                StandingMatch.resource_id == rid,
                                col(StandingMatch.need_id).in_([f[0] for f in found]),
                            )
                        )
                    )
                    if found
                    else set()
                )
                for need_id, c, summary in found:
                    if need_id in known:
                        continue
                    row = StandingMatch(
                        tenant_id=c.meta.tenant,
                        resource_id=rid,
                        need_id=need_id,
                        enterprise_id=(c.meta.extra or {}).get("enterprise_id"),
                        score=round(float(c.score), 4),
                        summary=summary,
                    )
                    session.add(row)
                    try:
                        session.commit()
                    except IntegrityError:  # recorded concurrently
                        session.rollback()
                        continue
                    created.append(row)
                    self.dispatcher.enqueue(
                        row.tenant_id,
                        "match.created",
                        {
                            "need_id": need_id,
                            "enterprise_id": row.enterprise_id,
                            "score": row.score,
                            "summary": summary,
                            "resource": {
                                "id": rid,
                                "kind": r.kind,
                                "title": r.title,
                                "url": resource_url(self.settings.public_url, rid),
                            },
                        },
                    )
        return created
