"""GET /v1/jobs/{id}: a background job of the caller's tenant (another tenant's job is not found)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import CallerDep, StateDep
from matcher.errors import NotFound
from matcher.jobs import store as jobs

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobPublic(BaseModel):
    id: str
    kind: Literal["digest", "import", "reindex", "snapshot", "webhook"]
    state: Literal["queued", "running", "succeeded", "failed", "retrying"]
    progress: float = Field(ge=0, le=1)
    attempts: int
    result: dict[str, Any] | None = Field(
        description="the job's report once it succeeded (an import's report)"
    )
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


@router.get("/{job_id}", response_model=JobPublic, summary="A background job's state")
async def get_job(
    job_id: Annotated[str, Path(min_length=1, max_length=36, description="the job id (a uuid)")],
    state: StateDep,
    caller: CallerDep,
) -> dict[str, Any]:
    """The job's state, progress and, once it ended, its result or error."""
    job = await run_in_threadpool(jobs.get, state.db, job_id, tenant=caller.tenant)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return jobs.as_dict(job)
