"""Sending work to the workers: a `job` row first, then the task message with this code's version in a header.
A broker that does not answer fails the job at once and raises ServiceUnavailable (503 through the API)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from matcher.errors import ServiceUnavailable
from matcher.jobs import store as jobs
from matcher.jobs.app import VERSION_HEADER, celery_app, code_version, configure
from matcher.jobs.tables import Job
from matcher.settings import Settings

logger = logging.getLogger(__name__)


class BrokerUnavailable(ServiceUnavailable):
    pass


def send(
    name: str,
    args: list[Any],
    *,
    task_id: str | None = None,
    countdown: float | None = None,
    version: str | None = None,
    queue: str | None = None,
) -> None:
    """Publish one task message (no retries: a broker that is down answers at once)."""
    try:
        celery_app.send_task(
            name,
            args=args,
            task_id=task_id,
            countdown=countdown,
            headers={VERSION_HEADER: version or code_version()},
            retry=False,
            queue=queue or celery_app.conf.task_default_queue,
        )
    except Exception as exc:  # noqa: BLE001 - kombu raises several kinds for a broker that is down
        raise BrokerUnavailable(
            f"the task broker does not answer ({type(exc).__name__}); background jobs cannot be queued now, "
            "retry later"
        ) from exc


def enqueue(
    settings: Settings,
    db: Engine,
    *,
    kind: str,
    tenant: str,
    task: str,
    args: list[Any],
    payload: bytes | None = None,
    version: str | None = None,
    queue: str | None = None,
) -> Job:
    """Record a job and queue its task (the job id is its first argument and the task id)."""
    configure(settings)
    job = jobs.create(db, tenant=tenant, kind=kind, payload=payload)
    try:
        send(task, [job.id, *args], task_id=job.id, version=version, queue=queue)
    except BrokerUnavailable as exc:
        jobs.update(db, job.id, state="failed", error=exc.detail, finished_at=datetime.now(UTC), payload=None)
        logger.warning("job %s (%s) not queued: %s", job.id, kind, exc.detail)
        raise
    return job
