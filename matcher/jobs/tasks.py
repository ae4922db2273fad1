"""The tasks workers run. Each job task updates its `job` row (running, progress, succeeded or failed) and is safe
to run twice: a digest chunk relies on DigestLog (a sent digest is never sent again), an import upserts by
external_id, a reindex or snapshot rebuilds the same thing, and a webhook delivery that is no longer pending is
left alone. A task sent by code of another version is refused (one log line) and goes back to the queue."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from celery import Task
from celery.exceptions import Reject
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from matcher.jobs import store as jobs
from matcher.jobs.app import VERSION_HEADER, celery_app, code_version
from matcher.settings import Settings

logger = logging.getLogger(__name__)
REFUSE_DELAY_S = 1.0
JOB_MAX_ATTEMPTS = 3
JOB_RETRY_S = 30.0
TRANSIENT = (
    OperationalError,
    ConnectionError,
    TimeoutError,
)  # worth another attempt later  # a refused task goes back after this, so a lone wrong-version worker does not spin


def sent_version(request: Any) -> str | None:
    value = getattr(request, VERSION_HEADER, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(VERSION_HEADER)
    return value


class JobTask(Task):
    """Refuses a message sent by code of another version (or without one): logged once, requeued."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.request.called_directly and not self.request.is_eager:
            sent = sent_version(self.request)
            mine = code_version()
            if sent != mine:
                logger.warning(
                    "refusing task %s %s: sent by version %s, this worker runs %s; it goes back to the queue",
                    self.name,
                    self.request.id,
                    sent or "unknown",
                    mine,
                )
                time.sleep(REFUSE_DELAY_S)
                raise Reject(f"version {sent} != {mine}", requeue=True)
        return super().__call__(*args, **kwargs)


# ---------------------------------------------------------------- per-process context of a worker


def settings() -> Settings:
    configured = getattr(celery_app.conf, "pm_settings", None)
    return configured if configured is not None else Settings()


@cache
def _engines(url: str) -> Engine:
    from matcher.store.db import make_engine

    return make_engine(settings())


def db() -> Engine:
    return _engines(settings().sqlalchemy_url)


@cache
def _digest_source(kind: str) -> Any:
    from matcher.digests.sources import EngineSource, KeywordSource

    if kind == "keyword":
        return KeywordSource(db())
    from matcher.domain.taxonomy import default_taxonomy
    from matcher.matching.engine import MatchEngine
    from matcher.models.encoder import load_configured_encoder

    s = settings()
    engine = MatchEngine(s, db(), default_taxonomy(), load_configured_encoder(s))
    engine.start(background_save_s=0)
    return EngineSource(engine)


def run_job(
    job_id: str, body: Callable[[Callable[[float], None]], dict[str, Any]], task: Task | None = None
) -> dict[str, Any] | None:
    """Run `body` as the job `job_id`: its row says running, then succeeded with the result or failed with the
    error in one line. A job that already succeeded (a message delivered again) is not run again. A transient
    failure (the store or a connection dropped) is retried up to JOB_MAX_ATTEMPTS times: the row says 'retrying'
    and the task is sent again with a delay."""
    engine = db()
    job = jobs.get(engine, job_id)
    if job is None:
        logger.warning("job %s: no such job row; the task is dropped", job_id)
        return None
    if job.state == "succeeded":
        logger.info("job %s already succeeded; nothing to do", job_id)
        return job.result
    jobs.update(
        engine,
        job_id,
        state="running",
        attempts=job.attempts + 1,
        started_at=job.started_at or datetime.now(UTC),
        error=None,
    )

    last = [0.0]

    def progress(share: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or share >= 1.0:
            last[0] = now
            jobs.update(engine, job_id, progress=max(0.0, min(1.0, share)))

    try:
        result = body(progress)
    except Exception as exc:  # noqa: BLE001 - the job fails with its reason; the message is acknowledged
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:2000]
        attempts = job.attempts + 1
        if task is not None and isinstance(exc, TRANSIENT) and attempts < JOB_MAX_ATTEMPTS:
            delay = JOB_RETRY_S * 2 ** (attempts - 1)
            logger.warning(
                "job %s (%s) attempt %d failed, retrying in %.0fs: %s",
                job_id,
                job.kind,
                attempts,
                delay,
                error,
            )
            jobs.update(engine, job_id, state="retrying", error=error)
            from matcher.jobs.enqueue import send

            send(task.name, list(task.request.args or []), task_id=job_id, countdown=delay)
            return None
        logger.error("job %s (%s) failed: %s", job_id, job.kind, error)
        jobs.update(engine, job_id, state="failed", error=error, finished_at=datetime.now(UTC), payload=None)
        return None
    jobs.update(
        engine,
        job_id,
        state="succeeded",
        progress=1.0,
        result=result,
        finished_at=datetime.now(UTC),
        payload=None,
    )
    return result


# ---------------------------------------------------------------- the tasks


@celery_app.task(name="parkmatch.digest_chunk", base=JobTask, bind=True)
def digest_chunk(
    self: Task,
    job_id: str,
    period: str,
    enterprise_ids: list[int],
    source: str = "engine",
    sender: str = "smtp",
) -> dict[str, Any] | None:
    """One chunk of a period's digests: DigestRunner over these enterprises (exactly once via DigestLog)."""
    from matcher.digests.compose import DigestComposer
    from matcher.digests.runner import DigestRunner
    from matcher.digests.send import make_sender

    def body(progress: Callable[[float], None]) -> dict[str, Any]:
        s = settings()
        mail = make_sender(s, sender)
        try:
            runner = DigestRunner(
                s, db(), DigestComposer(_digest_source(source), public_url=s.public_url), mail
            )
            report = runner.run(period, enterprise_ids=enterprise_ids)
        finally:
            mail.close()
        out = report.as_dict()
        out.pop("previews", None)
        out["enterprises"] = len(enterprise_ids)
        return out

    return run_job(job_id, body, self)


@celery_app.task(name="parkmatch.import_resources", base=JobTask, bind=True)
def import_resources(
    self: Task, job_id: str, tenant: str, role: str, options: dict[str, Any]
) -> dict[str, Any] | None:
    """A large resource import sent to POST /v1/resources:import; the file waits in the job row."""
    from sqlmodel import Session

    from matcher.ingest.importer import import_file
    from matcher.store.keys import Caller

    def body(progress: Callable[[float], None]) -> dict[str, Any]:
        data = jobs.payload(db(), job_id)
        if data is None:
            raise LookupError("the job's file is gone (the job ended before)")
        with Session(db(), expire_on_commit=False) as session:
            report = import_file(
                session, caller=Caller(tenant=tenant, role=role), data=data, settings=settings(), **options
            )
        return report.model_dump(mode="json")

    return run_job(job_id, body, self)


def _indexer() -> Any:
    from matcher.domain.taxonomy import default_taxonomy
    from matcher.indexing.indexer import Indexer
    from matcher.models.encoder import load_configured_encoder

    s = settings()
    return Indexer(
        s.model_copy(update={"snapshot_dir": None}), db(), default_taxonomy(), load_configured_encoder(s)
    )


def _snapshot(indexer: Any) -> dict[str, Any] | None:
    from matcher.indexing.snapshots import write_snapshot
    from matcher.store.schema import current

    s = settings()
    if s.snapshot_dir is None:
        return None
    info = write_snapshot(
        indexer,
        s.snapshot_dir,
        seq=indexer.feed_seq,
        schema_revision=current(db()) or "",
        keep=s.snapshot_keep,
    )
    return info.as_dict()


@celery_app.task(name="parkmatch.reindex", base=JobTask, bind=True)
def reindex(self: Task, job_id: str) -> dict[str, Any] | None:
    """Re-embed every record with the configured encoder (after a model change) in this worker's data dir, then
    write an index snapshot that replicas start from (when MATCHER_SNAPSHOT_DIR is set)."""

    def body(progress: Callable[[float], None]) -> dict[str, Any]:
        indexer = _indexer()
        out = indexer.rebuild(progress=lambda _stage, done, total: progress(done / total if total else 1.0))
        try:
            return {"encoder": indexer.encoder.model_id, **out, "snapshot": _snapshot(indexer)}
        finally:
            indexer.close()

    return run_job(job_id, body, self)


@celery_app.task(name="parkmatch.snapshot", base=JobTask, bind=True)
def snapshot(self: Task, job_id: str) -> dict[str, Any] | None:
    """Reconcile this worker's indexes with the store and write them to MATCHER_SNAPSHOT_DIR."""

    def body(progress: Callable[[float], None]) -> dict[str, Any]:
        if settings().snapshot_dir is None:
            raise ValueError("no snapshot directory: set MATCHER_SNAPSHOT_DIR on the workers")
        indexer = _indexer()
        indexer.start(background_save_s=0)
        try:
            return {"snapshot": _snapshot(indexer)}
        finally:
            indexer.close()

    return run_job(job_id, body, self)


@celery_app.task(name="parkmatch.webhook", base=JobTask, bind=True)
def webhook(self: Task, delivery_id: int) -> str:
    """One attempt of a webhook delivery; while it stays pending the next attempt is sent as a delayed task
    (countdown), which a broker keeps across restarts. The WebhookDelivery row is the source of truth: a row
    that is delivered or failed (a message delivered twice) is left alone."""
    from matcher.notify.delivery import WebhookDispatcher

    s = settings()
    dispatcher = WebhookDispatcher(s, db(), max_attempts=s.webhook_max_attempts, background=False)
    status, delay = dispatcher.attempt_once(delivery_id)
    if status == "pending" and delay is not None:
        from matcher.jobs.enqueue import send

        send("parkmatch.webhook", [delivery_id], countdown=delay)
    return status
