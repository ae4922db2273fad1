"""Weekly digests fanned out to task workers: N enterprises over M resources, with 1 then 2 `matcher worker`
processes on PostgreSQL and RabbitMQ, sending to a counting SMTP sink. Prints one JSON object: wall time per
worker count, the scaling 1 -> 2, duplicates (must be 0) and the peak RSS of each worker (must be < 4 GB).

    python -m bench.digest_workers                                   # 2,000 enterprises x 5,000 resources
    python -m bench.digest_workers --enterprises 100000 --resources 1000000 --chunk 500

Each run starts from an empty digest log and an empty sink; the workers are warmed first (their match engine
loaded, the indexes built from the store), so the wall time is the digest run itself: `matcher digest run
--queue` (chunks of --chunk enterprises) until every job ended."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from bench.worker_common import Sink, Worker, bench_schema

PERIOD = "2026-W48"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enterprises", type=int, default=2000)
    ap.add_argument("--resources", type=int, default=5000)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--workers", default="1,2", help="worker counts to run, in order")
    ap.add_argument("--source", default="engine", choices=("engine", "keyword"))
    ap.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672//")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timeout-s", type=float, default=3600, help="give up on a run after this long")
    args = ap.parse_args(argv)
    print(json.dumps(run(args), ensure_ascii=False, indent=1))


def run(args) -> dict:
    from sqlmodel import Session, delete

    from bench.digest_bench import populate
    from matcher.digests.queue import queue_digests, wait_for
    from matcher.domain.tables import DigestLog
    from matcher.jobs.app import configure
    from matcher.settings import Settings
    from matcher.store.db import init_db, make_engine

    work = Path(tempfile.mkdtemp(prefix="digest-workers-"))
    sink = (
        Sink()
    )  # before the schema: nothing below can fail between making the schema and the try that drops it
    url, drop = bench_schema(args.database_url)
    queue = f"parkmatch-bench-{uuid.uuid4().hex[:6]}"
    env = dict(
        os.environ,
        MATCHER_DATABASE_URL=url,
        MATCHER_BROKER_URL=args.broker_url,
        MATCHER_SMTP_HOST="127.0.0.1",
        MATCHER_SMTP_PORT=str(sink.port),
        MATCHER_MAIL_RATE_PER_SECOND="0",
        MATCHER_SECRET_KEY="bench",
        MATCHER_LOG_LEVEL="WARNING",
    )
    settings = Settings(
        data_dir=work / "cli", database_url=url, broker_url=args.broker_url, secret_key="bench"
    )
    out: dict = {
        "enterprises": args.enterprises,
        "resources": args.resources,
        "chunk": args.chunk,
        "source": args.source,
        "runs": [],
    }
    db = make_engine(settings)
    try:
        init_db(db)
        started = time.perf_counter()
        populate(db, args.enterprises, args.resources, args.seed)
        out["populate_s"] = round(time.perf_counter() - started, 1)
        configure(settings, queue=queue)
        for count in [int(n) for n in args.workers.split(",")]:
            with Session(db) as s:
                s.exec(delete(DigestLog))
                s.commit()
            sink.reset()
            workers = [
                Worker(f"worker-{i + 1}", env, queue, work / f"w{count}-{i + 1}") for i in range(count)
            ]
            try:
                started = time.perf_counter()
                for w in workers:
                    w.start()
                # an empty chunk for each worker: it loads its match engine before the timed run
                wait_for(
                    db,
                    [w.warm(settings, db, args.source, PERIOD) for w in workers],
                    poll_s=0.5,
                    timeout_s=600,
                )
                warm_s = time.perf_counter() - started
                started = time.perf_counter()
                queued = queue_digests(
                    settings, db, PERIOD, source=args.source, sender="smtp", chunk=args.chunk
                )
                report = wait_for(db, queued["jobs"], poll_s=0.2, timeout_s=args.timeout_s)
                wall = time.perf_counter() - started
            finally:
                for w in workers:
                    w.stop()
            out["runs"].append(
                {
                    "workers": count,
                    "wall_s": round(wall, 1),
                    "warm_up_s": round(warm_s, 1),
                    "chunks": queued["chunks"],
                    "sent": report["sent"],
                    "received": sum(sink.received.values()),
                    "duplicates": sink.duplicates(),
                    "failed_jobs": len(report["failed_jobs"]),
                    "unfinished_jobs": len(report["unfinished_jobs"]),
                    "digests_per_s": round(report["sent"] / wall, 1) if wall else None,
                    "peak_rss_mb": [round(w.peak_rss / 2**20) for w in workers],
                    "unexpected_worker_exits": [w.exits for w in workers],
                }
            )
        if len(out["runs"]) >= 2:
            out["scaling_1_to_2"] = round(out["runs"][0]["wall_s"] / out["runs"][1]["wall_s"], 2)
        out["duplicates"] = sum(r["duplicates"] for r in out["runs"])
        out["max_peak_rss_mb"] = max(max(r["peak_rss_mb"]) for r in out["runs"])
        out["cpu_count"] = os.cpu_count()
        out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    finally:
        db.dispose()
        sink.stop()
        drop()
        from kombu import Connection

        with Connection(args.broker_url) as conn:
            for name in [queue, *(f"{queue}-worker-{i + 1}" for i in range(4))]:
                try:
                    conn.default_channel.queue_delete(name)
                except Exception:  # noqa: BLE001 - a queue never declared
                    pass
        shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
