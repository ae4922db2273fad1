"""/v1/needs: what park enterprises are looking for; private needs stay within their tenant."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CallerDep, SessionDep, StateDep
from api.feed import BEHIND_RESPONSES, wait_min_seq
from api.idempotency import IdempotencyDep
from api.routes.entities import CursorQuery, EntityRoutes, IndustryQuery, LimitQuery, RegionQuery
from matcher.domain.schemas import NeedCreate, NeedPublic, NeedsPublic, NeedUpdate, ResourceKind, Visibility
from matcher.store import queries, records
from matcher.store.public import to_public_need

router = APIRouter(prefix="/needs", tags=["needs"])
NEEDS = EntityRoutes(
    records.create_need,
    records.get_need,
    records.update_need,
    records.delete_need,
    queries.list_needs,
    queries.count_needs,
    to_public_need,
    NeedsPublic,
    "need",
)

Status = Literal["open", "matched", "closed"]


@router.post("", status_code=201, response_model=NeedPublic, summary="Create a need")
def create_need(
    data: NeedCreate, session: SessionDep, caller: CallerDep, state: StateDep, idem: IdempotencyDep
) -> NeedPublic | JSONResponse:
    """`enterprise_id` must be an enterprise of the caller's tenant (422 otherwise)."""
    return NEEDS.create(session, caller, state, idem, data)


@router.get("", response_model=NeedsPublic, summary="List needs")
def list_needs(
    session: SessionDep,
    caller: CallerDep,
    enterprise_id: int | None = None,
    kind: Annotated[
        ResourceKind | None, Query(description="kind sought (needs naming no kind seek all)")
    ] = None,
    industry: IndustryQuery = None,
    region: RegionQuery = None,
    status: Status | None = None,
    visibility: Visibility | None = None,
    q: Annotated[str | None, Query(max_length=300, description="substring of the title")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> NeedsPublic:
    filters = dict(
        enterprise_id=enterprise_id,
        kind=kind,
        industry=industry,
        region=region,
        status=status,
        visibility=visibility,
        q=q,
    )
    return NEEDS.list(session, caller, cursor, limit, filters)


@router.get(
    "/{need_id}",
    response_model=NeedPublic,
    summary="Get a need",
    dependencies=[Depends(wait_min_seq)],
    responses=BEHIND_RESPONSES,
)
def get_need(need_id: int, session: SessionDep, caller: CallerDep) -> NeedPublic:
    return NEEDS.get(session, caller, need_id)


@router.patch("/{need_id}", response_model=NeedPublic, summary="Update a need")
def update_need(
    need_id: int, data: NeedUpdate, session: SessionDep, caller: CallerDep, state: StateDep
) -> NeedPublic:
    return NEEDS.update(session, caller, state, need_id, data)


@router.delete("/{need_id}", status_code=204, response_class=Response, summary="Delete a need")
def delete_need(need_id: int, session: SessionDep, caller: CallerDep, state: StateDep) -> None:
    NEEDS.delete(session, caller, state, need_id)
