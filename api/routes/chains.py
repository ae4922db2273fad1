"""/v1/chains: industry-chain maps (产业链图谱): links from upstream to downstream, the park's records placed on
them by the matcher (officers' decisions kept), gaps with who could fill them, and the map as SVG."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel
from sqlmodel import select

from api.deps import CallerDep, SessionDep, StateDep, get_matcher
from api.errors import UNAVAILABLE_RESPONSES
from api.idempotency import IdempotencyDep, create_once
from matcher.chains import picture, placement, render, store, view
from matcher.domain.chain_schemas import (
    ChainCreate,
    ChainPublic,
    ChainsPublic,
    ChainUpdate,
    PlacementDecision,
    PlacementPublic,
    PlacementRun,
    RecordType,
)
from matcher.domain.park_tables import ChainLink, ChainPlacement
from matcher.domain.tables import as_utc
from matcher.matching.engine import MatchEngine

router = APIRouter(prefix="/chains", tags=["chains"])
MatcherDep = Annotated[MatchEngine, Depends(get_matcher)]
PerLink = Annotated[
    int, Query(ge=1, le=1000, description="records listed per link and group (counts are whole)")
]
Explain = Annotated[bool, Query(description="each placed record's full explanation, not only its summary")]
Candidates = Annotated[
    int, Query(ge=0, le=50, description="outside enterprises and resources listed per gap")
]


class PlacementsPublic(BaseModel):
    data: list[PlacementPublic]
    count: int


def _placement(p: ChainPlacement, key: str) -> PlacementPublic:
    return PlacementPublic.model_validate(p.model_dump() | {"link_key": key})


@router.post("", status_code=201, response_model=ChainPublic, summary="Create an industry chain")
def create_chain(data: ChainCreate, session: SessionDep, caller: CallerDep, idem: IdempotencyDep):
    """Links with a key, a bilingual name and a description; `feeds` (or `upstream`) name the links they
    supply, without a cycle. Nothing is placed yet: POST /v1/chains/{id}/placement places the park's records."""

    def create() -> ChainPublic:
        chain = store.create_chain(session, caller=caller, data=data)
        return view.chain_view(session, caller=caller, engine=None, chain_id=chain.id or 0)

    return create_once(session, idem, create)


@router.get("", response_model=ChainsPublic, summary="List the park's chains")
def list_chains(session: SessionDep, caller: CallerDep) -> ChainsPublic:
    rows = [view.chain_summary(session, c) for c in store.list_chains(session, caller=caller)]
    return ChainsPublic(data=rows, count=len(rows))


@router.get("/{chain_id}", response_model=ChainPublic, summary="A chain with its records and gaps")
def get_chain(
    chain_id: int,
    session: SessionDep,
    caller: CallerDep,
    state: StateDep,
    per_link: PerLink = 50,
    explain: Explain = False,
    candidates: Candidates = 10,
) -> ChainPublic:
    """Per link: the park's enterprises, prospects, resources and needs on it; `gaps`: links with fewer park
    enterprises than the chain's threshold, ranked, each with outside enterprises (other tenants' public ones,
    the park's prospects) and resources that could fill it (none listed while the indexes load)."""
    engine = state.matcher if candidates else None
    return view.chain_view(
        session,
        caller=caller,
        engine=engine,
        chain_id=chain_id,
        per_link=per_link,
        explain=explain,
        candidates=candidates,
    )


@router.get("/{chain_id}/map.svg", response_class=Response, summary="The chain as a picture (SVG)")
def chain_map(chain_id: int, session: SessionDep, caller: CallerDep) -> Response:
    """Links by stage with their counts; gaps outlined in red."""
    chain = view.chain_view(session, caller=caller, engine=None, chain_id=chain_id, per_link=1)
    return Response(render.chain_svg(chain), media_type="image/svg+xml")


@router.get(
    "/{chain_id}/map.png",
    response_class=Response,
    responses={200: {"content": {picture.PNG_TYPE: {}}}},
    summary="The chain as a picture (PNG)",
)
def chain_map_png(chain_id: int, session: SessionDep, caller: CallerDep) -> Response:
    """The SVG's picture as a PNG (for slides and reports); its names are in English where the server has no
    CJK font (docs/park-office.md)."""
    chain = view.chain_view(session, caller=caller, engine=None, chain_id=chain_id, per_link=1)
    return Response(picture.chain_png(chain), media_type=picture.PNG_TYPE)


@router.patch("/{chain_id}", response_model=ChainPublic, summary="Update a chain")
def update_chain(chain_id: int, data: ChainUpdate, session: SessionDep, caller: CallerDep) -> ChainPublic:
    """`links`, when given, is the whole new set: a link keeps its id and placements while its key stays."""
    store.update_chain(session, caller=caller, id=chain_id, data=data)
    session.commit()
    return view.chain_view(session, caller=caller, engine=None, chain_id=chain_id)


@router.delete("/{chain_id}", status_code=204, response_class=Response, summary="Delete a chain")
def delete_chain(chain_id: int, session: SessionDep, caller: CallerDep) -> None:
    store.delete_chain(session, caller=caller, id=chain_id)
    session.commit()


@router.post(
    "/{chain_id}/placement",
    response_model=PlacementRun,
    responses=UNAVAILABLE_RESPONSES,
    summary="Place the park's records",
)
def place(chain_id: int, session: SessionDep, caller: CallerDep, engine: MatcherDep) -> PlacementRun:
    """Score every enterprise, open need and resource of the park against every link with the match pipeline
    and put each on its best links (at most max_links_per_record, each at least min_score); officers'
    decisions stay."""
    chain = placement.place_chain(session, caller=caller, engine=engine, chain_id=chain_id)
    session.commit()
    return PlacementRun(
        chain_id=chain.id or 0, placed_at=as_utc(chain.placed_at), stats=chain.placement_stats
    )


@router.post(
    "/{chain_id}/placements", status_code=201, response_model=PlacementPublic, summary="An officer's decision"
)
def decide(chain_id: int, data: PlacementDecision, session: SessionDep, caller: CallerDep) -> PlacementPublic:
    """Pin a record of the park on a link (it stays there whatever its score) or exclude it from one (the
    matcher never puts it there); every later placement keeps the decision until it is lifted."""
    row = store.decide(session, caller=caller, chain_id=chain_id, data=data)
    session.commit()
    return _placement(row, data.link_key)


@router.get("/{chain_id}/placements", response_model=PlacementsPublic, summary="Where records sit")
def list_placements(
    chain_id: int,
    session: SessionDep,
    caller: CallerDep,
    record_type: RecordType | None = None,
    record_id: Annotated[int | None, Query(ge=1)] = None,
    source: Annotated[str | None, Query(pattern="^(auto|officer)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> PlacementsPublic:
    chain = store.get_chain(session, caller=caller, id=chain_id)
    keys = {x.id: x.key for x in session.exec(select(ChainLink).where(ChainLink.chain_id == chain.id))}
    stmt = select(ChainPlacement).where(ChainPlacement.chain_id == chain.id)
    for column, value in (
        (ChainPlacement.record_type, record_type),
        (ChainPlacement.record_id, record_id),
        (ChainPlacement.source, source),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    rows = list(session.exec(stmt.order_by(ChainPlacement.score.desc(), ChainPlacement.id).limit(limit)))  # type: ignore[union-attr]
    data = [_placement(p, keys.get(p.link_id, "")) for p in rows]
    return PlacementsPublic(data=data, count=len(data))


@router.delete(
    "/{chain_id}/placements/{placement_id}",
    status_code=204,
    response_class=Response,
    summary="Lift a decision",
)
def lift(chain_id: int, placement_id: int, session: SessionDep, caller: CallerDep) -> None:
    store.lift(session, caller=caller, chain_id=chain_id, placement_id=placement_id)
    session.commit()
