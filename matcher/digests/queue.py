"""`matcher digest run --queue`: a period's digests fanned out to the task workers, one task per chunk of one
tenant's enterprises. Exactly-once stays in DigestLog: a chunk run twice, or two chunks racing, send nothing
twice (DigestRunner claims every row before sending it)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from matcher.domain.tables import DigestLog, Enterprise
from matcher.jobs import store as jobs
from matcher.jobs.enqueue import enqueue
from matcher.settings import Settings

DONE = ("sent", "skipped", "failed", "unconfirmed")
SUMMED = ("sent", "skipped", "empty", "failed", "retry_later", "already_done", "in_flight", "unconfirmed")


def due_enterprises(db: Engine, period: str, tenant: str | None = None) -> dict[str, list[int]]:
    """Per tenant, the ids of the enterprises that may get a digest this period and have none recorded as done."""
    with Session(db) as session:
        done = select(DigestLog.enterprise_id).where(
            DigestLog.period == period, col(DigestLog.status).in_(DONE)
        )
        stmt = (
            select(Enterprise.id, Enterprise.tenant_id)
            .where(Enterprise.unsubscribed == False)  # noqa: E712
            .where(col(Enterprise.digest_frequency).in_(["weekly", "biweekly"]))
            .where(col(Enterprise.id).not_in(done))
            .order_by(Enterprise.id)
        )
        if tenant is not None:
            stmt = stmt.where(Enterprise.tenant_id == tenant)
        out: dict[str, list[int]] = defaultdict(list)
        for eid, tid in session.exec(stmt):
            out[tid].append(eid)
    return dict(out)


def queue_digests(
    settings: Settings,
    db: Engine,
    period: str,
    *,
    tenant: str | None = None,
    source: str = "engine",
    sender: str = "smtp",
    chunk: int | None = None,
) -> dict[str, Any]:
    chunk = chunk or settings.digest_chunk
    ids: list[str] = []
    total = 0
    for tid, members in due_enterprises(db, period, tenant).items():
        for start in range(0, len(members), chunk):
            part = members[start : start + chunk]
            job = enqueue(
                settings,
                db,
                kind="digest",
                tenant=tid,
                task="parkmatch.digest_chunk",
                args=[period, part, source, sender],
            )
            ids.append(job.id)
            total += len(part)
    return {"period": period, "enterprises": total, "chunks": len(ids), "jobs": ids}


def wait_for(db: Engine, job_ids: list[str], *, timeout_s: float = 24 * 3600, poll_s: float = 1.0) -> dict:
    """Wait until every job ended; their reports summed (and the jobs that failed)."""
    deadline = time.monotonic() + timeout_s
    pending = set(job_ids)
    total: dict[str, Any] = {name: 0 for name in SUMMED}
    total["failed_jobs"] = []
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            job = jobs.get(db, job_id)
            if job is None or job.state in ("succeeded", "failed"):
                pending.discard(job_id)
                if job is not None and job.state == "succeeded":
                    for name in SUMMED:
                        total[name] += int((job.result or {}).get(name, 0))
                elif job is not None:
                    total["failed_jobs"].append({"id": job_id, "error": job.error})
        if pending:
            time.sleep(poll_s)
    total["unfinished_jobs"] = sorted(pending)
    return total
