"""Reading and writing `job` rows; every state change commits at once, so GET /v1/jobs/{id} sees it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from matcher.jobs.tables import Job


def create(db: Engine, *, tenant: str, kind: str, payload: bytes | None = None) -> Job:
    job = Job(id=str(uuid.uuid4()), tenant_id=tenant, kind=kind, payload=payload)
    with Session(db, expire_on_commit=False) as session:
        session.add(job)
        session.commit()
    return job


def get(db: Engine, job_id: str, *, tenant: str | None = None) -> Job | None:
    """The job, or None when there is none or it belongs to another tenant than `tenant` (when given)."""
    if len(job_id) > 36:
        return None
    with Session(db, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
    if job is None or (tenant is not None and job.tenant_id != tenant):
        return None
    return job


def update(db: Engine, job_id: str, **values: Any) -> Job | None:
    with Session(db, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        for name, value in values.items():
            setattr(job, name, value)
        job.updated_at = datetime.now(UTC)
        session.add(job)
        session.commit()
    return job


def payload(db: Engine, job_id: str) -> bytes | None:
    with Session(db) as session:
        job = session.get(Job, job_id)
        return None if job is None else job.payload


def as_dict(job: Job) -> dict[str, Any]:
    """What the API says of a job (never its payload)."""

    def when(value: datetime | None) -> str | None:
        if value is None:
            return None
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()

    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "progress": round(job.progress, 4),
        "attempts": job.attempts,
        "result": job.result,
        "error": job.error,
        "created_at": when(job.created_at),
        "started_at": when(job.started_at),
        "finished_at": when(job.finished_at),
        "updated_at": when(job.updated_at),
    }
