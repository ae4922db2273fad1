"""GET /v1/jobs/{id} and imports that run as jobs: tenant-scoped (another tenant's job is 404), problem+json
errors, a large import answered 202 with the job's location and run by a worker on the real local broker, a 503
when the broker is down for what only runs as a job, while small imports stay synchronous."""

from __future__ import annotations

import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from fastapi.testclient import TestClient
from kombu import Connection

from api.app import create_app
from matcher.jobs import store as jobs
from matcher.jobs.app import DEFAULT_BROKER, celery_app, configure
from tests.conftest import TENANT

CSV = "title,abstract,external_id\n" + "".join(
    f"Solid state battery cell {i},lithium metal anode research {i},ext-{i}\n" for i in range(40)
)

SMALL = "".join(CSV.splitlines(keepends=True)[:2]).encode()  # under 200 bytes


@pytest.fixture()
def queue():
    name = f"parkmatch-test-{uuid.uuid4().hex[:8]}"
    yield name
    with Connection(DEFAULT_BROKER) as conn:
        conn.default_channel.queue_delete(name)


def _client(settings, **update):
    return TestClient(create_app(settings.model_copy(update=update), load_engine=False))


def test_unknown_and_other_tenants_jobs_are_404_problems(client, engine, headers):
    job = jobs.create(engine, tenant=TENANT, kind="reindex")
    r = client.get(f"/v1/jobs/{job.id}", headers=headers["admin"])
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == job.id and body["state"] == "queued" and body["kind"] == "reindex"
    assert "payload" not in body and "tenant_id" not in body
    for path, who in ((f"/v1/jobs/{job.id}", "other"), (f"/v1/jobs/{uuid.uuid4()}", "admin")):
        r = client.get(path, headers=headers[who])
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["status"] == 404
    assert client.get(f"/v1/jobs/{'x' * 37}", headers=headers["admin"]).status_code == 422
    assert client.get(f"/v1/jobs/{job.id}").status_code == 401


def test_a_large_import_is_a_job_run_by_a_worker(settings, engine, headers, queue):
    with _client(settings, broker_url=DEFAULT_BROKER, import_async_bytes=200) as c:
        configure(c.app.state.app_state.settings, queue=queue)
        small = c.post("/v1/resources:import?kind=result", content=SMALL, headers=headers["admin"])
        assert (
            small.status_code == 200 and small.json()["totals"]["created"] == 1
        )  # under the limit: synchronous
        r = c.post(
            "/v1/resources:import?kind=result",
            content=CSV.encode(),
            headers={**headers["admin"], "Content-Type": "text/csv"},
        )
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        assert location == f"/v1/jobs/{r.json()['job']}" == r.json()["location"]
        assert c.get(location, headers=headers["other"]).status_code == 404
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=30
        ):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                body = c.get(location, headers=headers["admin"]).json()
                if body["state"] in ("succeeded", "failed"):
                    break
                time.sleep(0.2)
        assert body["state"] == "succeeded", body
        assert (
            body["result"]["totals"]["created"] == 39
            and body["result"]["totals"]["rows"] == 40
            and body["progress"] == 1.0
        )
        assert jobs.get(engine, body["id"]).payload is None  # the file is not kept once the job ended


def test_broker_down_answers_503_for_a_job_and_keeps_sync_imports(settings, headers):
    down = "amqp://guest:guest@127.0.0.1:1//"
    with _client(settings, broker_url=down, import_async_bytes=200) as c:
        assert c.get("/healthz").status_code == 200
        small = c.post("/v1/resources:import?kind=result", content=SMALL, headers=headers["admin"])
        assert small.status_code == 200
        started = time.monotonic()
        r = c.post("/v1/resources:import?kind=result", content=CSV.encode(), headers=headers["admin"])
        assert time.monotonic() - started < 10
        assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
        assert "broker" in r.json()["detail"] and "Traceback" not in r.text


def test_job_metrics_count_outcomes_and_read_the_queue_depth(settings, engine, queue):
    with _client(settings, broker_url=DEFAULT_BROKER, job_queue_depth_cache_s=0) as c:
        configure(c.app.state.app_state.settings, queue=queue)
        done = jobs.create(engine, tenant=TENANT, kind="import")
        jobs.update(engine, done.id, state="succeeded")
        jobs.create(engine, tenant=TENANT, kind="import")  # still queued: not counted as ended
        from matcher.jobs.enqueue import send

        send("parkmatch.snapshot", ["no-such-job"])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            text = c.get("/metrics").text
            if "parkmatch_job_queue_depth 1.0" in text:
                break
            time.sleep(0.2)
        assert 'parkmatch_jobs_total{kind="import",outcome="succeeded"} 1.0' in text
        assert "parkmatch_job_queue_depth 1.0" in text
        assert TENANT not in text
