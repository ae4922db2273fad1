"""/v1/enterprises: park enterprises; other tenants see the public profile, never contact or preferences."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CallerDep, OfficerDep, SessionDep, StateDep
from api.idempotency import IdempotencyDep, create_once
from matcher import repo
from matcher.schemas import (
    EnterpriseCreate,
    EnterprisePublic,
    EnterprisesPublic,
    EnterpriseUpdate,
    Stage,
    Tier,
    Visibility,
)

router = APIRouter(prefix="/enterprises", tags=["enterprises"])


@router.post("", status_code=201, response_model=EnterprisePublic, summary="Create an enterprise")
def create_enterprise(
    data: EnterpriseCreate, session: SessionDep, caller: OfficerDep, state: StateDep, idem: IdempotencyDep
) -> EnterprisePublic | JSONResponse:
    """Admins and officers only. `external_id` is unique per tenant (409 when taken)."""

    def create() -> EnterprisePublic:
        row = repo.create_enterprise(session, caller=caller, data=data, hub=state.hub, commit=False)
        return repo.to_public_enterprise(row, caller)

    return create_once(session, idem, create)


@router.get("", response_model=EnterprisesPublic, summary="List enterprises")
def list_enterprises(
    session: SessionDep,
    caller: CallerDep,
    industry: Annotated[
        str | None, Query(max_length=300, description="taxonomy tag in either language")
    ] = None,
    region: Annotated[str | None, Query(max_length=300)] = None,
    stage: Stage | None = None,
    tier: Tier | None = None,
    visibility: Visibility | None = None,
    q: Annotated[str | None, Query(max_length=300, description="substring of the name")] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=repo.MAX_LIMIT)] = 50,
) -> EnterprisesPublic:
    filters = dict(industry=industry, region=region, stage=stage, tier=tier, visibility=visibility, q=q)
    rows, next_cursor = repo.list_enterprises(session, caller=caller, cursor=cursor, limit=limit, **filters)
    return EnterprisesPublic(
        data=[repo.to_public_enterprise(r, caller) for r in rows],
        count=repo.count_enterprises(session, caller=caller, **filters),
        next_cursor=next_cursor,
    )


@router.get("/{enterprise_id}", response_model=EnterprisePublic, summary="Get an enterprise")
def get_enterprise(enterprise_id: int, session: SessionDep, caller: CallerDep) -> EnterprisePublic:
    return repo.to_public_enterprise(repo.get_enterprise(session, caller=caller, id=enterprise_id), caller)


@router.patch("/{enterprise_id}", response_model=EnterprisePublic, summary="Update an enterprise")
def update_enterprise(
    enterprise_id: int, data: EnterpriseUpdate, session: SessionDep, caller: OfficerDep, state: StateDep
) -> EnterprisePublic:
    row = repo.update_enterprise(session, caller=caller, id=enterprise_id, data=data, hub=state.hub)
    return repo.to_public_enterprise(row, caller)


@router.delete("/{enterprise_id}", status_code=204, response_class=Response, summary="Delete an enterprise")
def delete_enterprise(enterprise_id: int, session: SessionDep, caller: OfficerDep, state: StateDep) -> None:
    """Deletes the enterprise's needs and digest history with it."""
    repo.delete_enterprise(session, caller=caller, id=enterprise_id, hub=state.hub)
