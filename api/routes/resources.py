"""/v1/resources: research results, application scenarios, funds and incubators (one table, typed details)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CallerDep, SessionDep, StateDep, WriterDep
from api.idempotency import IdempotencyDep, create_once
from matcher import repo
from matcher.schemas import (
    ResourceCreate,
    ResourceKind,
    ResourcePublic,
    ResourcesPublic,
    ResourceUpdate,
    Visibility,
)

router = APIRouter(prefix="/resources", tags=["resources"])

Status = Literal["active", "paused", "closed"]


@router.post("", status_code=201, response_model=ResourcePublic, summary="Create a resource")
def create_resource(
    data: Annotated[ResourceCreate, Body()],
    session: SessionDep,
    caller: WriterDep,
    state: StateDep,
    idem: IdempotencyDep,
) -> ResourcePublic | JSONResponse:
    """`kind` selects the `details` model. `external_id` is unique per tenant (409 when taken)."""

    def create() -> ResourcePublic:
        row = repo.create_resource(session, caller=caller, data=data, hub=state.hub, commit=False)
        return repo.to_public_resource(row, caller)

    return create_once(session, idem, create)


@router.get("", response_model=ResourcesPublic, summary="List resources")
def list_resources(
    session: SessionDep,
    caller: CallerDep,
    kind: ResourceKind | None = None,
    industry: Annotated[
        str | None, Query(max_length=300, description="taxonomy tag in either language")
    ] = None,
    region: Annotated[str | None, Query(max_length=300)] = None,
    status: Status | None = None,
    visibility: Visibility | None = None,
    q: Annotated[str | None, Query(max_length=300, description="substring of the title")] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=repo.MAX_LIMIT)] = 50,
) -> ResourcesPublic:
    filters = dict(kind=kind, industry=industry, region=region, status=status, visibility=visibility, q=q)
    rows, next_cursor = repo.list_resources(session, caller=caller, cursor=cursor, limit=limit, **filters)
    return ResourcesPublic(
        data=[repo.to_public_resource(r, caller) for r in rows],
        count=repo.count_resources(session, caller=caller, **filters),
        next_cursor=next_cursor,
    )


@router.get("/{resource_id}", response_model=ResourcePublic, summary="Get a resource")
def get_resource(resource_id: int, session: SessionDep, caller: CallerDep) -> ResourcePublic:
    return repo.to_public_resource(repo.get_resource(session, caller=caller, id=resource_id), caller)


@router.patch("/{resource_id}", response_model=ResourcePublic, summary="Update a resource")
def update_resource(
    resource_id: int, data: ResourceUpdate, session: SessionDep, caller: WriterDep, state: StateDep
) -> ResourcePublic:
    """Only the fields given change; `details` is merged with the stored details and re-validated."""
    row = repo.update_resource(session, caller=caller, id=resource_id, data=data, hub=state.hub)
    return repo.to_public_resource(row, caller)


@router.delete("/{resource_id}", status_code=204, response_class=Response, summary="Delete a resource")
def delete_resource(resource_id: int, session: SessionDep, caller: WriterDep, state: StateDep) -> None:
    repo.delete_resource(session, caller=caller, id=resource_id, hub=state.hub)
