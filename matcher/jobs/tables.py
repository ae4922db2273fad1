"""The `job` table: one row per background job, what GET /v1/jobs/{id} reports (Alembic revision 0003_jobs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary
from sqlmodel import Field, SQLModel

from matcher.domain.tables import utcnow

JOB_STATES = ("queued", "running", "succeeded", "failed", "retrying")
JOB_KINDS = ("digest", "import", "reindex", "snapshot", "webhook")


class Job(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=36)  # a uuid4, also the Celery task id
    tenant_id: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=32)
    state: str = Field(default="queued", max_length=16)  # queued | running | succeeded | failed | retrying
    progress: float = 0.0  # 0..1
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    error: str | None = None
    attempts: int = 0
    # the job's input when it is too large for a broker message (an import's file); cleared when it ends
    payload: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)
