"""/v1/needs: what park enterprises are looking for; private needs stay within their tenant."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api.deps import CallerDep, SessionDep, StateDep, WriterDep
from api.idempotency import IdempotencyDep, create_once
from matcher import repo
from matcher.schemas import NeedCreate, NeedPublic, NeedsPublic, NeedUpdate, ResourceKind, Visibility

router = APIRouter(prefix="/needs", tags=["needs"])

Status = Literal["open", "matched", "closed"]


@router.post("", status_code=201, response_model=NeedPublic, summary="Create a need")
def create_need(
    data: NeedCreate, session: SessionDep, caller: WriterDep, state: StateDep, idem: IdempotencyDep
) -> NeedPublic | JSONResponse:
    """`enterprise_id` must be an enterprise of the caller's tenant (422 otherwise)."""

    def create() -> NeedPublic:
        row = repo.create_need(session, caller=caller, data=data, hub=state.hub, commit=False)
        return repo.to_public_need(row, caller)

    return create_once(session, idem, create)


@router.get("", response_model=NeedsPublic, summary="List needs")
def list_needs(
    session: SessionDep,
    caller: CallerDep,
    enterprise_id: int | None = None,
    kind: Annotated[
        ResourceKind | None, Query(description="kind sought (needs naming no kind seek all)")
    ] = None,
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
    rows, next_cursor = repo.list_needs(session, caller=caller, cursor=cursor, limit=limit, **filters)
    return NeedsPublic(
        data=[repo.to_public_need(r, caller) for r in rows],
        count=repo.count_needs(session, caller=caller, **filters),
        next_cursor=next_cursor,
    )


@router.get("/{need_id}", response_model=NeedPublic, summary="Get a need")
def get_need(need_id: int, session: SessionDep, caller: CallerDep) -> NeedPublic:
    return repo.to_public_need(repo.get_need(session, caller=caller, id=need_id), caller)


@router.patch("/{need_id}", response_model=NeedPublic, summary="Update a need")
def update_need(
    need_id: int, data: NeedUpdate, session: SessionDep, caller: WriterDep, state: StateDep
) -> NeedPublic:
    row = repo.update_need(session, caller=caller, id=need_id, data=data, hub=state.hub)
    return repo.to_public_need(row, caller)


@router.delete("/{need_id}", status_code=204, response_class=Response, summary="Delete a need")
def delete_need(need_id: int, session: SessionDep, caller: WriterDep, state: StateDep) -> None:
    repo.delete_need(session, caller=caller, id=need_id, hub=state.hub)
