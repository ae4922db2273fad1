"""GET /v1/stats: the outcome funnel of the caller's tenant, rejection reasons, gaps to recruit for."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import SessionDep, StateDep, permit
from matcher.outcomes.report import funnel
from matcher.store.keys import Caller

router = APIRouter(tags=["stats"])


class ListPart(BaseModel):
    count: int
    items: list[dict[str, Any]]


class StatsPublic(BaseModel):
    threshold: float
    total: dict[str, Any]
    by_kind: dict[str, dict[str, Any]]
    by_month: dict[str, dict[str, Any]]
    by_kind_month: dict[str, dict[str, dict[str, Any]]] = {}
    rejection_reasons: dict[str, int]
    unmatched_needs: ListPart
    never_matched_resources: ListPart


@router.get("/stats", response_model=StatsPublic)
def stats(
    session: SessionDep,
    state: StateDep,
    caller: Annotated[Caller, permit("read", "stats")],
    threshold: Annotated[
        float, Query(ge=0, le=1, description="a need whose best match is below this is a gap")
    ] = 0.5,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> StatsPublic:
    """Shown / clicked / contacted / accepted / deals per kind and per month; why matches were rejected; open
    needs with no good match (what the park should recruit for); resources never matched."""
    return StatsPublic(
        **funnel(session, tenant=caller.tenant, threshold=threshold, engine=state.matcher, limit=limit)
    )
