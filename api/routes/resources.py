"""/v1/resources: research results, application scenarios, funds and incubators (one table, typed details)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CallerDep, SessionDep, StateDep
from api.feed import BEHIND_RESPONSES, wait_min_seq
from api.idempotency import IdempotencyDep
from api.routes.entities import CursorQuery, EntityRoutes, IndustryQuery, LimitQuery, RegionQuery
from matcher.domain.schemas import (
    ResourceCreate,
    ResourceKind,
    ResourcePublic,
    ResourcesPublic,
    ResourceUpdate,
    Visibility,
)
from matcher.store import queries, records
from matcher.store.public import to_public_resource

router = APIRouter(prefix="/resources", tags=["resources"])
RESOURCES = EntityRoutes(
    records.create_resource,
    records.get_resource,
    records.update_resource,
    records.delete_resource,
    queries.list_resources,
    queries.count_resources,
    to_public_resource,
    ResourcesPublic,
    "resource",
)

Status = Literal["active", "paused", "closed"]


@router.post("", status_code=201, response_model=ResourcePublic, summary="Create a resource")
def create_resource(
    data: Annotated[ResourceCreate, Body()],
    session: SessionDep,
    caller: CallerDep,
    state: StateDep,
    idem: IdempotencyDep,
) -> ResourcePublic | JSONResponse:
    """`kind` selects the `details` model. `external_id` is unique per tenant (409 when taken)."""
    return RESOURCES.create(session, caller, state, idem, data)


@router.get("", response_model=ResourcesPublic, summary="List resources")
def list_resources(
    session: SessionDep,
    caller: CallerDep,
    kind: ResourceKind | None = None,
    industry: IndustryQuery = None,
    region: RegionQuery = None,
    status: Status | None = None,
    visibility: Visibility | None = None,
    q: Annotated[str | None, Query(max_length=300, description="substring of the title")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> ResourcesPublic:
    filters = dict(kind=kind, industry=industry, region=region, status=status, visibility=visibility, q=q)
    return RESOURCES.list(session, caller, cursor, limit, filters)


@router.get(
    "/{resource_id}",
    response_model=ResourcePublic,
    summary="Get a resource",
    dependencies=[Depends(wait_min_seq)],
    responses=BEHIND_RESPONSES,
)
def get_resource(resource_id: int, session: SessionDep, caller: CallerDep) -> ResourcePublic:
    return RESOURCES.get(session, caller, resource_id)


@router.patch("/{resource_id}", response_model=ResourcePublic, summary="Update a resource")
def update_resource(
    resource_id: int, data: ResourceUpdate, session: SessionDep, caller: CallerDep, state: StateDep
) -> ResourcePublic:
    """Only the fields given change; `details` is merged with the stored details and re-validated."""
    return RESOURCES.update(session, caller, state, resource_id, data)


@router.delete("/{resource_id}", status_code=204, response_class=Response, summary="Delete a resource")
def delete_resource(resource_id: int, session: SessionDep, caller: CallerDep, state: StateDep) -> None:
    RESOURCES.delete(session, caller, state, resource_id)
