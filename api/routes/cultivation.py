"""The cultivation pipeline (摸底 -> 入库培育 -> 精准服务): tier moves with their history, each tier's policy, the
funnel, officers' follow-ups, and prospect lists imported from a file."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, BeforeValidator
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import CallerDep, SessionDep, StateDep, permit
from api.errors import problem_response
from api.feed import SEQ_HEADER
from api.routes.imports import FILE_TYPES_TEXT, EncodingQuery, check_encoding, import_body, read_upload
from matcher.cultivation import funnel, pipeline
from matcher.domain.cultivation_schemas import (
    FollowUpsPublic,
    FunnelPublic,
    PoliciesPublic,
    PolicyIn,
    PolicyPublic,
    TierMove,
    TransitionPublic,
    TransitionsPublic,
)
from matcher.domain.schemas import EnterprisePublic, Tier
from matcher.domain.tables import as_utc
from matcher.ingest.enterprises import import_enterprises
from matcher.ingest.importer import ImportReport
from matcher.store.keys import Caller
from matcher.store.public import to_public_enterprise

router = APIRouter(tags=["cultivation"])


def _iso_time(value: object) -> object:
    """An ISO 8601 date-time, as the document says: a bare number is not taken for a Unix time."""
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("an ISO 8601 date-time, e.g. 2031-05-20T09:00:00Z")
    return value


Since = Annotated[
    datetime | None,
    BeforeValidator(_iso_time),
    Query(description="ISO 8601 time; default 90 days ago (funnel), all (history)"),
]
_IMPORT_BODY = import_body("the CSV, XLSX, JSON Lines or JSON file")


class TierMoved(BaseModel):
    enterprise: EnterprisePublic
    transition: TransitionPublic | None = None


def _t(row) -> TransitionPublic:
    return TransitionPublic.model_validate(row.model_dump() | {"at": as_utc(row.at)})


@router.post(
    "/enterprises/{enterprise_id}/tier", response_model=TierMoved, summary="Move an enterprise to a tier"
)
def move(
    enterprise_id: int, data: TierMove, session: SessionDep, caller: CallerDep, state: StateDep
) -> TierMoved:
    """Recorded with who, when and why; the tier's policy (if the park set one) sets its digest preferences."""
    row, moved = pipeline.move(session, caller=caller, enterprise_id=enterprise_id, data=data, hub=state.hub)
    out = TierMoved(enterprise=to_public_enterprise(row, caller), transition=_t(moved) if moved else None)
    session.commit()
    return out


@router.get(
    "/enterprises/{enterprise_id}/tier-history", response_model=TransitionsPublic, summary="Tier history"
)
def enterprise_history(enterprise_id: int, session: SessionDep, caller: CallerDep) -> TransitionsPublic:
    rows = [_t(r) for r in pipeline.history(session, caller=caller, enterprise_id=enterprise_id)]
    return TransitionsPublic(data=rows, count=len(rows))


@router.get("/cultivation/transitions", response_model=TransitionsPublic, summary="The park's tier moves")
def transitions(
    session: SessionDep,
    caller: CallerDep,
    since: Since = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> TransitionsPublic:
    rows = [_t(r) for r in pipeline.history(session, caller=caller, since=since, limit=limit)]
    return TransitionsPublic(data=rows, count=len(rows))


@router.get("/cultivation/policies", response_model=PoliciesPublic, summary="Each tier's policy")
def policies(session: SessionDep, caller: CallerDep) -> PoliciesPublic:
    return PoliciesPublic(data=pipeline.policies(session, caller=caller))


@router.put("/cultivation/policies/{tier}", response_model=PolicyPublic, summary="Set a tier's policy")
def set_policy(tier: Tier, data: PolicyIn, session: SessionDep, caller: CallerDep) -> PolicyPublic:
    """Digest frequency and kinds for the tier's enterprises (set on entering the tier, and now with
    `apply_now`), and whether officers follow up their matches."""
    out = pipeline.set_policy(session, caller=caller, tier=tier, data=data)
    session.commit()
    return out


@router.get("/cultivation/funnel", response_model=FunnelPublic, summary="The funnel by tier and chain")
def get_funnel(
    session: SessionDep,
    caller: CallerDep,
    since: Since = None,
    chain_id: Annotated[int | None, Query(ge=1)] = None,
) -> FunnelPublic:
    return funnel.funnel(session, caller=caller, since=since, chain_id=chain_id)


@router.get("/cultivation/follow-ups", response_model=FollowUpsPublic, summary="Matches officers follow up")
def follow_ups(
    session: SessionDep, caller: CallerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> FollowUpsPublic:
    """Good matches served to enterprises of tiers whose policy asks for a follow-up, with no feedback yet."""
    rows = funnel.follow_ups(session, caller=caller, limit=limit)
    return FollowUpsPublic(data=rows, count=len(rows))


@router.post(
    "/enterprises:import",
    response_model=ImportReport,
    summary="Import enterprises (a prospect list) from a file",
    openapi_extra=_IMPORT_BODY,
    responses={
        413: problem_response("the file is over MATCHER_MAX_IMPORT_BYTES or MATCHER_MAX_IMPORT_ROWS"),
        415: problem_response(FILE_TYPES_TEXT),
        422: problem_response(
            "the file cannot be decoded or parsed, has no name column, or an option is invalid"
        ),
    },
)
async def import_file(
    request: Request,
    response: Response,
    state: StateDep,
    caller: Annotated[Caller, permit("create", "import")],
    tier: Annotated[Tier | None, Query(description="tier of rows without one")] = "prospect",
    dry_run: bool = False,
    encoding: EncodingQuery = None,
) -> ImportReport:
    """Upsert by `external_id` (统一社会信用代码 or 编号) within your tenant; headers in Chinese or English (企业名称,
    简介, 行业, 地区, 阶段, 梯队, 规模, 邮箱), one of them the name's. Rows without a tier enter as `tier`
    (prospects by default).

    Send the file as multipart (field `file`) or as the raw body with its Content-Type (text/csv,
    application/x-ndjson, application/jsonl, the XLSX type). Rows that fail validation are reported with
    `reason` ("field: message") and do not stop the others; see docs/park-office.md."""
    check_encoding(encoding)
    upload = await read_upload(request, state.settings.max_import_bytes)

    def run() -> ImportReport:
        with Session(state.db, expire_on_commit=False) as session:
            return import_enterprises(
                session,
                caller=caller,
                data=upload.data,
                settings=state.settings,
                tier=tier,
                filename=upload.filename,
                content_type=upload.content_type,
                encoding=encoding,
                dry_run=dry_run,
                hub=state.hub,
            )

    report = await run_in_threadpool(run)
    if report.seq is not None:
        response.headers[SEQ_HEADER] = str(report.seq)
    return report
