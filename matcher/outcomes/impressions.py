"""Impressions: which resources a match showed, where and why, logged for feedback and for training rankers."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from matcher.domain.tables import Impression
from matcher.matching.pipeline import MatchOutcome


def log_impressions(db: Engine, outcome: MatchOutcome, tenant: str) -> int:
    """One impression per candidate of `outcome`, in rank order, served to `tenant`; one commit. Returns how many."""
    with Session(db) as session:
        for position, c in enumerate(outcome.candidates, start=1):
            session.add(
                Impression(
                    request_id=outcome.request_id,
                    tenant_id=tenant,
                    need_id=outcome.need_id,
                    enterprise_id=outcome.enterprise_id,
                    resource_id=c.id,
                    position=position,
                    score=c.score,
                    features=c.features(),
                    # per item: in an interleaved list, the version of the ranker that placed it
                    model_version=outcome.version_of(c.id),
                )
            )
        session.commit()
    return len(outcome.candidates)


def add_impression(
    session: Session,
    *,
    request_id: str,
    tenant: str,
    resource_id: int,
    score: float,
    features: dict[str, float | None],
    model_version: str | None,
    enterprise_id: int | None = None,
    need_id: int | None = None,
    position: int = 1,
) -> Impression:
    """One served match outside a match list (a meeting of a docking event), added to the caller's session so it
    commits with what served it; feedback on it names its request_id."""
    row = Impression(
        request_id=request_id,
        tenant_id=tenant,
        need_id=need_id,
        enterprise_id=enterprise_id,
        resource_id=resource_id,
        position=position,
        score=score,
        features=features,
        model_version=model_version,
    )
    session.add(row)
    return row
