"""Relay incubation (接续孵化): incubators mark graduating enterprises and see which parks' shared chains and links
they fit; parks see the graduates that fit their own chains."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from api.deps import CallerDep, SessionDep, get_matcher
from api.errors import UNAVAILABLE_RESPONSES
from api.idempotency import IdempotencyDep, create_once
from matcher.domain.relay_schemas import (
    GraduatesPublic,
    GraduationCreate,
    GraduationPublic,
    GraduationsPublic,
    RelayPublic,
)
from matcher.domain.tables import as_utc
from matcher.matching.engine import MatchEngine
from matcher.relay import graduation

router = APIRouter(tags=["relay"])
MatcherDep = Annotated[MatchEngine, Depends(get_matcher)]


@router.post(
    "/enterprises/{enterprise_id}/graduation",
    status_code=201,
    response_model=GraduationPublic,
    summary="Mark an enterprise as graduating",
)
def mark(
    enterprise_id: int, data: GraduationCreate, session: SessionDep, caller: CallerDep, idem: IdempotencyDep
):
    """An incubator passes one of its enterprises on: parks whose chains it fits see it among their graduates
    (when its profile is public)."""

    def create() -> GraduationPublic:
        g = graduation.mark(session, caller=caller, enterprise_id=enterprise_id, data=data)
        listed = {x.id: x for x in graduation.listing(session, caller=caller)}
        return listed.get(g.id) or GraduationPublic.model_validate(
            g.model_dump() | {"enterprise": None, "marked_at": as_utc(g.marked_at)}
        )

    return create_once(session, idem, create)


@router.delete(
    "/enterprises/{enterprise_id}/graduation",
    status_code=204,
    response_class=Response,
    summary="Withdraw the mark",
)
def unmark(enterprise_id: int, session: SessionDep, caller: CallerDep) -> None:
    graduation.unmark(session, caller=caller, enterprise_id=enterprise_id)
    session.commit()


@router.get("/graduations", response_model=GraduationsPublic, summary="The tenant's graduating enterprises")
def graduations(session: SessionDep, caller: CallerDep) -> GraduationsPublic:
    rows = graduation.listing(session, caller=caller)
    return GraduationsPublic(data=rows, count=len(rows))


@router.get(
    "/enterprises/{enterprise_id}/relay",
    response_model=RelayPublic,
    responses=UNAVAILABLE_RESPONSES,
    summary="Parks' chains and links an enterprise fits",
)
def relay(
    enterprise_id: int,
    session: SessionDep,
    caller: CallerDep,
    engine: MatcherDep,
    links_per_chain: Annotated[int, Query(ge=1, le=50)] = 5,
) -> RelayPublic:
    """The chains that parks opted into sharing, with the links the enterprise fits (scored and explained, and
    whether the park lacks enterprises there), best first."""
    return graduation.relay(
        session, caller=caller, engine=engine, enterprise_id=enterprise_id, links_per_chain=links_per_chain
    )


@router.get(
    "/relay/graduates",
    response_model=GraduatesPublic,
    responses=UNAVAILABLE_RESPONSES,
    summary="Graduates that fit the park's chains",
)
def graduates(
    session: SessionDep,
    caller: CallerDep,
    engine: MatcherDep,
    chain_id: Annotated[int | None, Query(ge=1)] = None,
) -> GraduatesPublic:
    rows = graduation.graduates(session, caller=caller, engine=engine, chain_id=chain_id)
    return GraduatesPublic(data=rows, count=len(rows))
