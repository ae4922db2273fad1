"""/v1/enterprises: park enterprises; other tenants see the public profile, never contact or preferences."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CallerDep, SessionDep, StateDep, permit
from api.feed import BEHIND_RESPONSES, wait_min_seq
from api.idempotency import IdempotencyDep
from api.routes.entities import CursorQuery, EntityRoutes, IndustryQuery, LimitQuery, RegionQuery
from matcher.domain.schemas import (
    EnterpriseCreate,
    EnterprisePublic,
    EnterprisesPublic,
    EnterpriseUpdate,
    Stage,
    Tier,
    Visibility,
)
from matcher.store import queries, records
from matcher.store.keys import Caller
from matcher.store.public import to_public_enterprise

router = APIRouter(prefix="/enterprises", tags=["enterprises"])
ENTERPRISES = EntityRoutes(
    records.create_enterprise,
    records.get_enterprise,
    records.update_enterprise,
    records.delete_enterprise,
    queries.list_enterprises,
    queries.count_enterprises,
    to_public_enterprise,
    EnterprisesPublic,
    "enterprise",
)


@router.post("", status_code=201, response_model=EnterprisePublic, summary="Create an enterprise")
def create_enterprise(
    data: EnterpriseCreate,
    session: SessionDep,
    caller: Annotated[Caller, permit("create", "enterprise")],
    state: StateDep,
    idem: IdempotencyDep,
) -> EnterprisePublic | JSONResponse:
    """Admins and officers only. `external_id` is unique per tenant (409 when taken)."""
    return ENTERPRISES.create(session, caller, state, idem, data)


@router.get("", response_model=EnterprisesPublic, summary="List enterprises")
def list_enterprises(
    session: SessionDep,
    caller: CallerDep,
    industry: IndustryQuery = None,
    region: RegionQuery = None,
    stage: Stage | None = None,
    tier: Tier | None = None,
    visibility: Visibility | None = None,
    q: Annotated[str | None, Query(max_length=300, description="substring of the name")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> EnterprisesPublic:
    filters = dict(industry=industry, region=region, stage=stage, tier=tier, visibility=visibility, q=q)
    return ENTERPRISES.list(session, caller, cursor, limit, filters)


@router.get(
    "/{enterprise_id}",
    response_model=EnterprisePublic,
    summary="Get an enterprise",
    dependencies=[Depends(wait_min_seq)],
    responses=BEHIND_RESPONSES,
)
def get_enterprise(enterprise_id: int, session: SessionDep, caller: CallerDep) -> EnterprisePublic:
    return ENTERPRISES.get(session, caller, enterprise_id)


@router.patch("/{enterprise_id}", response_model=EnterprisePublic, summary="Update an enterprise")
def update_enterprise(
    enterprise_id: int,
    data: EnterpriseUpdate,
    session: SessionDep,
    caller: Annotated[Caller, permit("update", "enterprise")],
    state: StateDep,
) -> EnterprisePublic:
    return ENTERPRISES.update(session, caller, state, enterprise_id, data)


@router.delete("/{enterprise_id}", status_code=204, response_class=Response, summary="Delete an enterprise")
def delete_enterprise(
    enterprise_id: int,
    session: SessionDep,
    caller: Annotated[Caller, permit("delete", "enterprise")],
    state: StateDep,
) -> None:
    """Deletes the enterprise's needs and digest history with it."""
    ENTERPRISES.delete(session, caller, state, enterprise_id)
