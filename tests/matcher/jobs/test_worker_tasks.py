"""Webhook deliveries as tasks on the real local broker (retries are delayed tasks; a delivered row is left
alone when its task runs again) and `matcher worker` with the broker down (one line, non-zero, no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from kombu import Connection
from sqlmodel import Session

from matcher.domain.tables import Tenant
from matcher.jobs.app import DEFAULT_BROKER, celery_app, configure
from matcher.jobs.enqueue import send
from matcher.notify.delivery import WebhookDispatcher
from matcher.notify.tables import WebhookDelivery
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine
from tests.matcher.notify.test_webhooks import Receiver, subscribe


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_webhook_retries_are_delayed_tasks_and_a_delivered_row_is_not_posted_again(tmp_path, receiver):
    settings = Settings(
        data_dir=tmp_path, secret_key="k", webhook_allow_private=True, broker_url=DEFAULT_BROKER
    )
    db = make_engine(settings)
    init_db(db)
    with Session(db) as s:
        s.add(Tenant(id="park"))
        s.commit()
    queue = f"parkmatch-test-{uuid.uuid4().hex[:8]}"
    configure(settings, queue=queue)
    subscribe(db, receiver.url)
    receiver.plan = [503, 200]
    dispatcher = WebhookDispatcher(settings, db, background=False)
    try:
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=30
        ):
            [delivery_id] = dispatcher.enqueue("park", "match.created", {"need_id": 1})
            deadline = time.monotonic() + 15  # the retry waits backoff (2 s) in the broker as a delayed task
            while time.monotonic() < deadline:
                with Session(db) as s:
                    row = s.get(WebhookDelivery, delivery_id)
                if row.status != "pending":
                    break
                time.sleep(0.2)
            assert row.status == "delivered" and row.attempts == 2 and len(receiver.requests) == 2
            send("parkmatch.webhook", [delivery_id])  # the same task again (a message delivered twice)
            time.sleep(1.5)
        assert len(receiver.requests) == 2
        with Session(db) as s:
            assert s.get(WebhookDelivery, delivery_id).attempts == 2
    finally:
        with Connection(DEFAULT_BROKER) as conn:
            conn.default_channel.queue_delete(queue)
        db.dispose()


def test_worker_with_the_broker_down_prints_one_line_and_exits_non_zero(tmp_path):
    env = dict(
        os.environ,
        MATCHER_DATA_DIR=str(tmp_path),
        MATCHER_BROKER_URL="amqp://guest:guest@127.0.0.1:1//",
        PYTHONPATH=os.getcwd(),
    )
    done = subprocess.run(
        [sys.executable, "-m", "matcher.cli.main", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    err = done.stderr.strip()
    assert "Traceback" not in done.stderr + done.stdout
    assert (
        len(err.splitlines()) == 1 and "broker" in err and "127.0.0.1:1" in err and "guest:guest" not in err
    )


def test_redis_works_as_the_broker_too(tmp_path):
    from matcher.jobs import store as jobs
    from matcher.jobs.app import queue_depth
    from matcher.jobs.enqueue import enqueue

    settings = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/15")
    db = make_engine(settings)
    init_db(db)
    queue = f"parkmatch-test-{uuid.uuid4().hex[:8]}"
    configure(settings, queue=queue)
    try:
        job = enqueue(settings, db, kind="snapshot", tenant="park", task="parkmatch.snapshot", args=[])
        assert queue_depth(settings, queue) == 1
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=30
        ):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and jobs.get(db, job.id).state in ("queued", "running"):
                time.sleep(0.1)
        done = jobs.get(db, job.id)  # no MATCHER_SNAPSHOT_DIR on this worker: the job fails, with why
        assert done.state == "failed" and "MATCHER_SNAPSHOT_DIR" in done.error and done.attempts == 1
    finally:
        configure(settings.model_copy(update={"broker_url": DEFAULT_BROKER}))
        db.dispose()


def test_digest_run_queue_with_the_broker_down_is_one_line_and_sync_runs_still_work(tmp_path):
    env = dict(
        os.environ,
        MATCHER_DATA_DIR=str(tmp_path),
        MATCHER_BROKER_URL="amqp://guest:guest@127.0.0.1:1//",
        PYTHONPATH=os.getcwd(),
        MATCHER_LOG_LEVEL="WARNING",
    )
    db = make_engine(Settings(data_dir=tmp_path))
    init_db(db)
    with Session(db) as s:
        s.add(Tenant(id="park"))
        s.commit()
    from matcher.domain.tables import Enterprise

    with Session(db) as s:
        s.add(Enterprise(tenant_id="park", name="A", description="battery", email="a@example.com"))
        s.commit()
    db.dispose()
    cmd = [
        sys.executable,
        "-m",
        "matcher.cli.main",
        "digest",
        "run",
        "--source",
        "keyword",
        "--sender",
        "log",
    ]
    queued = subprocess.run([*cmd, "--queue"], env=env, capture_output=True, text=True, timeout=60)
    assert queued.returncode == 1 and "Traceback" not in queued.stderr
    assert queued.stderr.strip().splitlines()[-1].startswith("error: the task broker does not answer")
    direct = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert direct.returncode == 0, direct.stderr
