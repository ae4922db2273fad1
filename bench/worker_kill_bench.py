"""Kill -9 a task worker in the middle of a digest run, again and again, and count what the recipients got:
duplicates and lost digests must both be 0. Prints one JSON object.

    python -m bench.worker_kill_bench                        # 600 enterprises x 1,000 resources, 10 kills
    python -m bench.worker_kill_bench --kills 20 --workers 2

The run is `matcher digest run --queue` (chunks of --chunk enterprises) on PostgreSQL and RabbitMQ with
`matcher worker` subprocesses sending to a counting SMTP sink. Every --min-gap to --max-gap seconds one worker
is killed with SIGKILL (its whole process group) and started again at once; the chunk it held goes back to the
queue (late acks) and is run again. A digest the killed worker had claimed but whose outcome it never recorded
stays 'sending' until its lease (--lease-s) expires and is then marked 'unconfirmed', never sent again; a
last `digest run --queue` after the lease does that sweep. Figures: duplicates (messages beyond the first per
recipient), lost (a digest planned with items that no message reached, 'unconfirmed' ones included), and the
unconfirmed rows split by whether the sink did receive them."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from bench.worker_common import Sink, Worker, bench_schema

PERIOD = "2026-W48"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enterprises", type=int, default=600)
    ap.add_argument("--resources", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=20)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--min-gap", type=float, default=2.0)
    ap.add_argument("--max-gap", type=float, default=5.0)
    ap.add_argument("--lease-s", type=float, default=5.0)
    ap.add_argument("--source", default="engine", choices=("engine", "keyword"))
    ap.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--broker-url", default="amqp://guest:guest@127.0.0.1:5672//")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    print(json.dumps(run(args), ensure_ascii=False, indent=1))


def run(args) -> dict:
    from sqlmodel import Session, select

    from bench.digest_bench import populate
    from matcher.digests.queue import queue_digests, wait_for
    from matcher.domain.tables import DigestLog, Enterprise
    from matcher.jobs.app import configure
    from matcher.settings import Settings
    from matcher.store.db import init_db, make_engine

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="worker-kill-"))
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
        MATCHER_DIGEST_LEASE_S=str(args.lease_s),
    )
    settings = Settings(
        data_dir=work / "cli",
        database_url=url,
        broker_url=args.broker_url,
        secret_key="bench",
        digest_lease_s=args.lease_s,
    )
    out: dict = {
        k: getattr(args, k) for k in ("enterprises", "resources", "chunk", "workers", "kills", "source")
    }
    db = make_engine(settings)
    workers = [Worker(f"worker-{i + 1}", env, queue, work / f"w-{i + 1}") for i in range(args.workers)]
    try:
        init_db(db)
        populate(db, args.enterprises, args.resources, args.seed)
        configure(settings, queue=queue)
        for w in workers:
            w.start()
        wait_for(db, [w.warm(settings, db, args.source, PERIOD) for w in workers], poll_s=0.5)
        started = time.perf_counter()
        queued = queue_digests(settings, db, PERIOD, source=args.source, sender="smtp", chunk=args.chunk)
        kills = []
        for _ in range(args.kills):
            time.sleep(rng.uniform(args.min_gap, args.max_gap))
            victim = rng.choice(workers)
            with Session(db) as s:
                sending = len(s.exec(select(DigestLog.id).where(DigestLog.status == "sending")).all())
            victim.kill9()
            kills.append({"at_s": round(time.perf_counter() - started, 1), "rows_sending": sending})
            victim.start()
        report = wait_for(db, queued["jobs"], poll_s=0.5, timeout_s=3600)
        time.sleep(args.lease_s + 1)  # then a last run: claims past their lease become unconfirmed
        sweep = queue_digests(settings, db, PERIOD, source=args.source, sender="smtp", chunk=args.chunk)
        swept = wait_for(db, sweep["jobs"], poll_s=0.5, timeout_s=3600)
        wall = time.perf_counter() - started
        with Session(db) as s:
            rows = s.exec(select(DigestLog, Enterprise.email).join(Enterprise)).all()
        planned = {email.lower(): log.status for log, email in rows if log.items}
        received = sink.received
        lost = [e for e in planned if received.get(e, 0) == 0]
        unconfirmed = [e for e, status in planned.items() if status == "unconfirmed"]
        statuses: dict[str, int] = {}
        for log, _ in rows:
            statuses[log.status] = statuses.get(log.status, 0) + 1
        out.update(
            {
                "wall_s": round(wall, 1),
                "kills_done": len(kills),
                "kills": kills,
                "digests_planned": len(planned),
                "messages_received": sum(received.values()),
                "duplicates": sink.duplicates(),
                "lost": len(lost),
                "lost_by_status": {
                    s: sum(1 for e in lost if planned[e] == s) for s in {planned[e] for e in lost}
                },
                "unconfirmed": len(unconfirmed),
                "unconfirmed_received": sum(1 for e in unconfirmed if received.get(e, 0) > 0),
                "digest_log_statuses": statuses,
                "jobs": len(queued["jobs"]),
                "failed_jobs": len(report["failed_jobs"]) + len(swept["failed_jobs"]),
                "unfinished_jobs": len(report["unfinished_jobs"]) + len(swept["unfinished_jobs"]),
                "max_peak_rss_mb": max(round(w.peak_rss / 2**20) for w in workers),
                "unexpected_worker_exits": [w.exits for w in workers],
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
    finally:
        for w in workers:
            w.stop()
        db.dispose()
        sink.stop()
        drop()
        from kombu import Connection

        with Connection(args.broker_url) as conn:
            for name in [queue, *(w.own_queue for w in workers)]:
                try:
                    conn.default_channel.queue_delete(name)
                except Exception:  # noqa: BLE001 - a queue never declared
                    pass
        shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    main()
