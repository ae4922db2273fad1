"""Background jobs on the real local broker (RabbitMQ): an in-process worker thread runs the tasks. Digest chunks
send nothing twice (run twice, or after a worker died mid-send), a task from another version is refused and stays
queued, a broker that is down fails the enqueue in one clear error, webhook deliveries are idempotent tasks."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from kombu import Connection
from sqlmodel import Session, select

from matcher.digests.compose import DigestComposer, DigestPolicy
from matcher.digests.queue import queue_digests, wait_for
from matcher.digests.runner import DigestRunner
from matcher.digests.send import SmtpSender
from matcher.digests.sources import KeywordSource
from matcher.domain.tables import DigestLog
from matcher.errors import ServiceUnavailable
from matcher.jobs import store as jobs
from matcher.jobs.app import DEFAULT_BROKER, celery_app, configure, queue_depth
from matcher.jobs.enqueue import enqueue
from matcher.jobs.tables import Job
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine
from tests.matcher.digests.test_digest import NOW, PERIOD, seed

DOWN_BROKER = "amqp://guest:guest@127.0.0.1:1//"  # nothing listens on port 1


@pytest.fixture()
def env(tmp_path, smtp):
    inbox, port = smtp
    settings = Settings(
        data_dir=tmp_path,
        secret_key="s3cret",
        public_url="https://park.example.com",
        smtp_host="127.0.0.1",
        smtp_port=port,
        mail_from="Park <digest@park.example.com>",
        mail_rate_per_second=0,
        broker_url=DEFAULT_BROKER,
    )
    db = make_engine(settings)
    init_db(db)
    ids = seed(db)
    queue = f"parkmatch-test-{uuid.uuid4().hex[:8]}"
    configure(settings, queue=queue)
    yield settings, db, inbox, ids, queue
    with Connection(DEFAULT_BROKER) as conn:
        conn.default_channel.queue_delete(queue)
    db.dispose()


@pytest.fixture()
def worker(env):
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[env[4]]
    ) as w:
        yield w


def _wait(db, job_id: str, states=("succeeded", "failed"), timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = jobs.get(db, job_id)
        if job is not None and job.state in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {jobs.get(db, job_id).state}")


def _runner(settings, db) -> DigestRunner:
    composer = DigestComposer(
        KeywordSource(db), public_url=settings.public_url, policy=DigestPolicy(threshold=0.3)
    )
    return DigestRunner(
        settings, db, composer, SmtpSender.from_settings(settings), max_attempts=3, backoff_s=60
    )


def test_digest_chunks_run_on_a_worker_and_a_second_run_sends_nothing(env, worker):
    settings, db, inbox, ids, _ = env
    out = queue_digests(settings, db, PERIOD, source="keyword", chunk=2)
    assert out["chunks"] >= 2 and out["enterprises"] == 4  # the one with digests off is not queued
    report = wait_for(db, out["jobs"], timeout_s=30, poll_s=0.1)
    assert report["failed_jobs"] == [] and report["unfinished_jobs"] == []
    sent = len(inbox.messages)
    assert report["sent"] == sent >= 1
    # the same period again, and the same jobs delivered again: nothing is sent twice
    again = queue_digests(settings, db, PERIOD, source="keyword", chunk=2)
    wait_for(db, again["jobs"], timeout_s=30, poll_s=0.1)
    job = jobs.get(db, out["jobs"][0])
    from matcher.jobs.enqueue import send

    jobs.update(db, job.id, state="queued")  # as if the broker delivered the message a second time
    send("parkmatch.digest_chunk", [job.id, PERIOD, ids_list(db), "keyword", "smtp"])
    _wait(db, job.id)
    assert len(inbox.messages) == sent
    tos = [str(m["To"]) for m in inbox.messages]
    assert len(tos) == len(set(tos))


def ids_list(db) -> list[int]:
    with Session(db) as s:
        return [r.enterprise_id for r in s.exec(select(DigestLog))]


def test_a_sending_row_past_its_lease_is_marked_unconfirmed_never_resent(env):
    """A worker killed between claiming a digest and recording the outcome leaves it 'sending': within the lease
    another run leaves it alone; past the lease it becomes 'unconfirmed' and is reported, not sent again."""
    settings, db, inbox, ids, _ = env
    runner = _runner(settings, db)
    runner.run(PERIOD, now=NOW)
    sent = len(inbox.messages)
    with Session(db, expire_on_commit=False) as s:
        row = s.exec(select(DigestLog).where(DigestLog.status == "sent")).first()
        row.status, row.claimed_at, row.sent_at = "sending", datetime.now(UTC), None
        s.add(row)
        s.commit()
    live = runner.run(PERIOD, now=NOW)
    assert live.in_flight == 1 and live.sent == 0
    with Session(db, expire_on_commit=False) as s:
        row = s.get(DigestLog, row.id)
        row.claimed_at = datetime.now(UTC) - timedelta(seconds=settings.digest_lease_s + 1)
        s.add(row)
        s.commit()
    expired = runner.run(PERIOD, now=NOW)
    assert expired.unconfirmed == 1 and expired.sent == 0
    assert expired.errors[-1]["status"] == "unconfirmed"
    with Session(db) as s:
        assert s.get(DigestLog, row.id).status == "unconfirmed"
    assert runner.run(PERIOD, now=NOW).sent == 0
    assert len(inbox.messages) == sent
    runner.sender.close()


def test_two_runs_racing_for_one_row_send_it_once(env):
    settings, db, inbox, ids, _ = env
    runner = _runner(settings, db)
    runner.run(PERIOD, now=NOW, dry_run=False)
    with Session(db, expire_on_commit=False) as s:
        row = s.exec(select(DigestLog).where(DigestLog.status == "sent")).first()
        row.status = "pending"
        s.add(row)
        s.commit()
        s.refresh(row)
    # the other run claimed it first: this run's claim fails and it sends nothing
    with Session(db, expire_on_commit=False) as s:
        assert runner._claim(s, s.get(DigestLog, row.id)) is True
        assert runner._claim(s, s.get(DigestLog, row.id)) is False
    runner.sender.close()


def test_a_task_from_another_version_is_refused_and_stays_queued(env, caplog):
    settings, db, inbox, ids, queue = env
    caplog.set_level(logging.WARNING, logger="matcher.jobs.tasks")
    job = enqueue(
        settings,
        db,
        kind="digest",
        tenant="park",
        task="parkmatch.digest_chunk",
        args=[PERIOD, list(ids.values()), "keyword", "smtp"],
        version="0.0.1+0001_baseline",
    )
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=[queue]):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            "refusing task" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.1)
    refusals = [r.getMessage() for r in caplog.records if "refusing task" in r.getMessage()]
    assert refusals and "0.0.1+0001_baseline" in refusals[0] and "\n" not in refusals[0]
    assert jobs.get(db, job.id).state == "queued" and jobs.get(db, job.id).attempts == 0
    assert inbox.messages == []
    deadline = time.monotonic() + 10  # the message is back in the queue for a worker of its version
    while time.monotonic() < deadline and queue_depth(settings, queue) != 1:
        time.sleep(0.2)
    assert queue_depth(settings, queue) == 1


def test_broker_down_fails_the_enqueue_with_one_clear_error(env, tmp_path):
    settings, db, *_ = env
    down = settings.model_copy(update={"broker_url": DOWN_BROKER})
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="broker does not answer"):
        enqueue(down, db, kind="reindex", tenant="park", task="parkmatch.reindex", args=[])
    assert time.monotonic() - started < 10
    with Session(db) as s:
        (job,) = s.exec(select(Job)).all()
    assert job.state == "failed" and "broker" in job.error
    assert queue_depth(down) is None
    configure(settings, queue=env[4])


def test_queue_depth_reads_the_broker(env):
    settings, db, inbox, ids, queue = env
    enqueue(settings, db, kind="snapshot", tenant="park", task="parkmatch.snapshot", args=[])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and queue_depth(settings, queue) != 1:
        time.sleep(0.1)
    assert queue_depth(settings, queue) == 1


def test_a_transient_failure_is_retried_later_and_a_broken_job_fails_with_its_reason(env):
    from types import SimpleNamespace

    from matcher.jobs.tasks import run_job

    settings, db, inbox, ids, queue = env
    job = jobs.create(db, tenant="park", kind="snapshot")
    task = SimpleNamespace(name="parkmatch.snapshot", request=SimpleNamespace(args=[job.id]))

    def drops(progress):
        raise ConnectionError("the store went away")

    assert run_job(job.id, drops, task) is None
    row = jobs.get(db, job.id)
    assert row.state == "retrying" and row.attempts == 1 and "went away" in row.error

    # the retry waits in the broker as a delayed message (the worker holds it until its time)
    def broken(progress):
        raise ValueError("bad input")

    assert run_job(job.id, broken, task) is None
    row = jobs.get(db, job.id)
    assert row.state == "failed" and row.error == "ValueError: bad input" and row.attempts == 2
    assert run_job(job.id, lambda progress: {"ok": True}, task) == {"ok": True}
    assert jobs.get(db, job.id).state == "succeeded"
    assert run_job(job.id, broken, task) == {"ok": True}  # a message delivered again: not run again


def test_a_run_that_died_before_the_message_left_is_resumed_and_sent_once(env):
    """Killed after the claim but before the message's end reached the SMTP server (no handed_at): nothing was
    delivered, so once the lease expired the row goes back to pending and is sent, exactly once."""
    settings, db, inbox, ids, _ = env
    runner = _runner(settings, db)
    real = runner.sender

    class Killed(BaseException):
        pass

    class DiesBeforeTheEnd:
        def send(self, message, mark=None):
            raise Killed()  # the worker died before the body was with the server: mark() never called

        def close(self):
            pass

    runner.sender = DiesBeforeTheEnd()
    with pytest.raises(Killed):
        runner.run(PERIOD, now=NOW)
    with Session(db) as s:
        (stuck,) = s.exec(select(DigestLog).where(DigestLog.status == "sending")).all()
        assert stuck.claimed_at is not None and stuck.handed_at is None
    runner.sender = real
    assert runner.run(PERIOD, now=NOW).in_flight == 1  # within the lease: left alone
    runner.lease_s = 0.001
    report = runner.run(PERIOD, now=NOW)
    assert report.unconfirmed == 0 and report.sent >= 1
    tos = [str(m["To"]) for m in inbox.messages]
    assert len(tos) == len(set(tos))
    with Session(db) as s:
        assert s.get(DigestLog, stuck.id).status == "sent"
    assert runner.run(PERIOD, now=NOW).sent == 0
    real.close()


def test_the_smtp_sender_marks_the_point_past_which_the_outcome_is_unknown(env):
    settings, db, inbox, ids, _ = env
    runner = _runner(settings, db)
    runner.run(PERIOD, now=NOW)
    with Session(db) as s:
        sent = s.exec(select(DigestLog).where(DigestLog.status == "sent")).all()
    assert sent and all(r.handed_at is not None and r.claimed_at <= r.handed_at for r in sent)
    runner.sender.close()
