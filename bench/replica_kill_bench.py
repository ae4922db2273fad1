"""Replicas killed mid-feed lose nothing: two replicas on one PostgreSQL store; a writer keeps writing through
replica A (creates, updates, deletes), bursts of rows are imported through A, and replica B is `kill -9`'d while
it is applying a burst from the change feed, then started again on the same data dir, N times. At the end both
replicas are compared with the store (`matcher feed verify`: counts and (id, stamp) checksums per kind) and every
write A acknowledged is looked up in the store. Prints one JSON object.

    python bench/replica_kill_bench.py --encoder ~/.cache/parkmatch/models/e5-small-static-1 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test --kills 10

"Mid-feed" means B's /readyz said an applied seq inside the burst's block of entries (past its first entry,
before its last) when the kill was sent. "Catch-up" is timed from the restart until B's applied seq reaches the log's head as it was at
the restart (B loads its encoder and saved indexes, reconciles them with the store by stamps, then follows)."""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from match_bench import free_port, record, sentences, wait_ready  # noqa: E402
from replica_bench import cli, write_rows  # noqa: E402


def applied(url: str) -> int | None:
    try:
        return int(httpx.get(url + "/readyz", timeout=2).json()["feed"]["applied_seq"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


class Writer:
    """Single-record writes through A the whole time: creates, and updates or deletes of earlier creates."""

    def __init__(self, url: str, headers: dict, sents: list[str]) -> None:
        self.url, self.headers, self.sents = url, headers, sents
        self.stop = threading.Event()
        self.live: dict[int, str] = {}  # id -> title A acknowledged last
        self.deleted: set[int] = set()
        self.writes = 0
        self.errors = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(3)
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=60) as c:
            i = 0
            while not self.stop.is_set():
                i += 1
                roll = rng.random()
                try:
                    if roll < 0.6 or len(self.live) < 10:
                        body = record(rng, self.sents, 30_000_000 + i)
                        body.pop("external_id")
                        r = c.post("/v1/resources", json=body)
                        if r.status_code == 201:
                            self.live[r.json()["id"]] = body["title"]
                    elif roll < 0.85:
                        rid = rng.choice(list(self.live))
                        title = f"更新{i} {self.live[rid]}"[:60]
                        r = c.patch(f"/v1/resources/{rid}", json={"title": title})
                        if r.status_code == 200:
                            self.live[rid] = title
                    else:
                        rid = rng.choice(list(self.live))
                        r = c.delete(f"/v1/resources/{rid}")
                        if r.status_code == 204:
                            self.live.pop(rid)
                            self.deleted.add(rid)
                    if r.status_code >= 300:
                        self.errors += 1
                    else:
                        self.writes += 1
                except httpx.HTTPError:
                    self.errors += 1
                time.sleep(0.02)


def burst(url: str, headers: dict, rng: random.Random, sents: list[str], rows: int, n: int) -> int:
    """Import `rows` rows through A; returns the seq of the import."""
    lines = [json.dumps({**record(rng, sents, 40_000_000 + n * rows + i), "external_id": f"kill-{n}-{i}"},
                        ensure_ascii=False) for i in range(rows)]  # fmt: skip
    r = httpx.post(
        url + "/v1/resources:import",
        content="\n".join(lines).encode(),
        headers={**headers, "Content-Type": "application/jsonl"},
        timeout=600,
    )
    r.raise_for_status()
    return int(r.json()["seq"])


def stop(procs: dict[str, subprocess.Popen]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--seed", type=int, default=1000, help="resources in the store before the replicas start")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--burst", type=int, default=300, help="rows imported through A before each kill")
    ap.add_argument("--feed-batch", type=int, default=50, help="B's MATCHER_FEED_BATCH (entries per step)")
    args = ap.parse_args()
    rng = random.Random(5)
    sents = sentences()
    schema = f"kill_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(args.database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(args.database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    procs: dict[str, subprocess.Popen] = {}
    started = time.perf_counter()
    out: dict = {"encoder": args.encoder, "cpu_count": os.cpu_count(), "seeded_resources": args.seed}
    try:
        with tempfile.TemporaryDirectory(prefix="parkmatch-kills-") as tmp_name:
            tmp = Path(tmp_name)
            env = dict(
                os.environ,
                MATCHER_DATABASE_URL=url.render_as_string(hide_password=False),
                MATCHER_DATA_DIR=str(tmp / "cli"),
                MATCHER_ENCODER=args.encoder,
                MATCHER_LOG_LEVEL="WARNING",
                MATCHER_RATE_LIMIT_ENABLED="false",
            )
            cli(env, "migrate")
            key = cli(env, "keys", "create", "--tenant", "bench", "--role", "admin").strip().splitlines()[-1]
            headers = {"Authorization": f"Bearer {key}"}
            write_rows(tmp / "seed.jsonl", [record(rng, sents, i) for i in range(args.seed)])
            cli(env, "import", str(tmp / "seed.jsonl"), "--tenant", "bench")
            ports = {"a": free_port(), "b": free_port()}
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            logs = {name: (tmp / f"{name}.log").open("ab") for name in ports}

            def start(name: str) -> None:
                extra = {"MATCHER_FEED_BATCH": str(args.feed_batch)} if name == "b" else {}
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "matcher.cli.main", "serve", "--port", str(ports[name])],
                    env={**env, "MATCHER_DATA_DIR": str(tmp / name), **extra},
                    stdout=logs[name],
                    stderr=subprocess.STDOUT,
                )

            for name in ports:
                start(name)
            for u in urls.values():
                wait_ready(u)
            store = create_engine(url)
            writer = Writer(urls["a"], headers, sents)
            writer.thread.start()
            kills: list[dict] = []
            with httpx.Client() as probe:
                for n in range(args.kills):
                    before = applied(urls["b"]) or 0
                    done: dict = {}
                    importer = threading.Thread(
                        target=lambda n=n, done=done: done.update(
                            seq=burst(urls["a"], headers, rng, sents, args.burst, n)
                        )
                    )
                    importer.start()
                    # kill B while it is applying the burst: the import is one transaction, so its entries are
                    # one block of seqs with one `at`; B's applied seq inside that block means mid-burst
                    deadline = time.perf_counter() + 600
                    at = block = None
                    while time.perf_counter() < deadline:
                        if block is None:
                            with store.connect() as conn:
                                block = conn.execute(
                                    text(
                                        "SELECT min(seq), max(seq) FROM change_log WHERE seq > :s GROUP BY at "
                                        "HAVING count(*) >= :n ORDER BY min(seq) LIMIT 1"
                                    ),
                                    {"s": before, "n": args.burst},
                                ).first()
                        seq = applied(urls["b"])
                        if block is not None and seq is not None:
                            if block[0] <= seq < block[1]:
                                at = seq
                                break
                            if seq >= block[1]:
                                break  # applied whole before it was seen part-way: kill it anyway
                        time.sleep(0.01)
                    procs["b"].kill()  # SIGKILL: no save, no cleanup
                    procs["b"].wait()
                    importer.join()
                    mid = at is not None
                    head_at_restart = int(
                        probe.get(urls["a"] + "/readyz", timeout=10).json()["feed"]["head_seq"]
                    )
                    t0 = time.perf_counter()
                    start("b")
                    up = None
                    while (seen := applied(urls["b"])) is None or seen < head_at_restart:
                        if seen is not None and up is None:
                            up = time.perf_counter() - t0  # serving again (indexes loaded and reconciled)
                        if procs["b"].poll() is not None or time.perf_counter() - t0 > 900:
                            raise SystemExit(f"replica B did not come back (see {tmp / 'b.log'})")
                        time.sleep(0.05)
                    kills.append(
                        {
                            "applied_at_kill": at,
                            "burst_seq": done["seq"],
                            "mid_feed": mid,
                            "catch_up_s": round(time.perf_counter() - t0, 1),
                            "of_which_start_s": round(up if up is not None else time.perf_counter() - t0, 1),
                        }
                    )
            writer.stop.set()
            writer.thread.join()
            head = int(httpx.get(urls["a"] + "/readyz", timeout=10).json()["feed"]["head_seq"])
            for u in urls.values():
                while (applied(u) or 0) < head:
                    time.sleep(0.1)
            verify = subprocess.run(
                [sys.executable, "-m", "matcher.cli.main", "feed", "verify", "--replica", urls["a"],
                 "--replica", urls["b"], "--key", key, "--json"],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            report = json.loads(verify.stdout)
            with create_engine(url).connect() as conn:
                held = {
                    int(i): t
                    for i, t in conn.execute(text("SELECT id, title FROM resource WHERE tenant_id = 'bench'"))
                }
            lost = sum(1 for rid in writer.live if rid not in held)
            stale = sum(
                1 for rid, title in writer.live.items() if rid in held and held[rid].strip() != title.strip()
            )
            resurrected = sum(1 for rid in writer.deleted if rid in held)
            catch = sorted(k["catch_up_s"] for k in kills)
            out.update(
                {
                    "kills": len(kills),
                    "kills_mid_feed": sum(k["mid_feed"] for k in kills),
                    "writer_writes_acknowledged": writer.writes,
                    "writer_errors": writer.errors,
                    "burst_rows": args.burst,
                    "feed_batch_b": args.feed_batch,
                    "log_head": head,
                    "lost_records": lost,
                    "records_not_at_acknowledged_version": stale,
                    "deleted_records_back": resurrected,
                    "replicas_equal": bool(report["equal"]) and verify.returncode == 0,
                    "verify": report["replicas"],
                    "catch_up_s_median": catch[len(catch) // 2] if catch else None,
                    "catch_up_s_max": catch[-1] if catch else None,
                    "each_kill": kills,
                }
            )
            for fh in logs.values():
                fh.close()
            gaps = (tmp / "b.log").read_text(errors="replace").count("change feed gap")
            out["gaps_logged_by_b"] = gaps
            stop(procs)  # before the temp dir goes: a replica saves its indexes as it stops
    finally:
        stop(procs)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    out["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
