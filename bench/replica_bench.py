"""Two replicas on one PostgreSQL store, kept in step by the change feed: how long until a write made on
replica A is searchable on replica B (p50/p99 over N writes while B serves queries), and how long until a
`matcher import` of M rows into the store of the running replicas is searchable on B. Prints one JSON object.

    python bench/replica_bench.py --encoder ~/.cache/parkmatch/models/e5-small-static-1 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Each run works in a PostgreSQL schema of its own (dropped at the end) and temp data dirs; records are
synthesised as in bench/match_bench.py. "Searchable on B" is measured with read-your-writes: right after A
answers a write with its seq, B is asked `/v1/search?min_seq=<seq>` for the record's own unique word, and the
time is taken when B answers with the record among its matches (B waits until it has applied the seq)."""

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
import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from match_bench import free_port, record, sentences, wait_ready  # noqa: E402


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "matcher.cli.main", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"matcher {args[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def write_rows(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def word(i: int, tag: str) -> str:
    """A word no other record holds (Latin letters only, so that it is one lexical term)."""
    letters = "".join("abcdefghij"[int(d)] for d in f"{i:06d}")
    return f"zq{tag}{letters}"


class QueryLoad:
    """Clients searching B the whole time, as a serving replica would be."""

    def __init__(self, url: str, headers: dict[str, str], queries: list[str], clients: int) -> None:
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.threads = [
            threading.Thread(target=self._run, args=(url, headers, queries), daemon=True)
            for _ in range(clients)
        ]

    def _run(self, url: str, headers: dict[str, str], queries: list[str]) -> None:
        rng = random.Random()
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            while not self.stop.is_set():
                t = time.perf_counter()
                c.get("/v1/search", params={"q": rng.choice(queries), "k": 10})
                self.latencies.append((time.perf_counter() - t) * 1000)

    def __enter__(self) -> QueryLoad:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join()


def searchable(c: httpx.Client, q: str, rid: int, seq: int, deadline: float) -> bool:
    """Ask B until it answers with the record (503: not applied within its bound; ask again)."""
    while time.perf_counter() < deadline:
        r = c.get("/v1/search", params={"q": q, "k": 10, "min_score": 0, "min_seq": seq})
        if r.status_code == 200 and rid in [m["resource"]["id"] for m in r.json()["matches"]]:
            return True
        if r.status_code not in (200, 503):
            raise SystemExit(f"search on B failed: {r.status_code} {r.text[:300]}")
    return False


def writes_on_a(a: str, b: str, headers: dict, rng: random.Random, sents: list[str], n: int) -> dict:
    times: list[float] = []
    missed = 0
    with (
        httpx.Client(base_url=a, headers=headers, timeout=30) as ca,
        httpx.Client(base_url=b, headers=headers, timeout=30) as cb,
    ):
        for i in range(n):
            body = record(rng, sents, 10_000_000 + i)
            body.pop("external_id")
            w = word(i, "w")
            body["title"] = f"{w} {body['title']}"
            t0 = time.perf_counter()
            r = ca.post("/v1/resources", json=body)
            assert r.status_code == 201, r.text
            seq = int(r.headers["X-Matcher-Seq"])
            if searchable(cb, w, r.json()["id"], seq, t0 + 30):
                times.append(time.perf_counter() - t0)
            else:
                missed += 1
    arr = np.array(times) * 1000
    return {
        "writes": n,
        "not_searchable_within_30s": missed,
        "write_to_searchable_on_b_ms_p50": round(float(np.percentile(arr, 50)), 1),
        "write_to_searchable_on_b_ms_p99": round(float(np.percentile(arr, 99)), 1),
        "write_to_searchable_on_b_ms_max": round(float(arr.max()), 1),
    }


def import_into_store(
    env: dict, b: str, headers: dict, rng: random.Random, sents: list[str], rows: int, tmp: Path
) -> dict:
    path = tmp / "import.jsonl"
    batch = []
    for i in range(rows):
        row = record(rng, sents, 20_000_000 + i)
        row["title"] = f"{word(i, 'i')} {row['title']}"
        batch.append(row)
    write_rows(path, batch)
    t0 = time.perf_counter()
    report = json.loads(cli(env, "import", str(path), "--tenant", "bench", "--json"))
    import_s = time.perf_counter() - t0
    seq = int(report["seq"])
    last = word(rows - 1, "i")
    with httpx.Client(base_url=b, headers=headers, timeout=30) as cb:
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            ready = cb.get("/readyz").json().get("feed", {})
            if ready.get("applied_seq", 0) >= seq:
                break
            time.sleep(0.05)
        all_s = time.perf_counter() - t0
        hit = cb.get("/v1/search", params={"q": last, "k": 5, "min_score": 0, "min_seq": seq}).json()
    return {
        "import_rows": rows,
        "import_created": report["totals"]["created"],
        "cli_import_s": round(import_s, 1),
        "cli_import_rows_per_s": round(rows / import_s, 1),
        "import_start_to_all_searchable_on_b_s": round(all_s, 1),
        "last_row_found_on_b": any(last in m["resource"]["title"] for m in hit.get("matches", [])),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--seed", type=int, default=2000, help="resources in the store before the replicas start")
    ap.add_argument("--writes", type=int, default=200)
    ap.add_argument("--import-rows", type=int, default=10_000)
    ap.add_argument("--query-clients", type=int, default=2)
    args = ap.parse_args()
    rng = random.Random(7)
    sents = sentences()
    schema = f"replica_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(args.database_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(args.database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    servers: list[subprocess.Popen] = []
    try:
        with tempfile.TemporaryDirectory(prefix="parkmatch-replicas-") as tmp_name:
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
            urls = []
            for name in ("a", "b"):
                port = free_port()
                servers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "matcher.cli.main", "serve", "--port", str(port)],
                        env={**env, "MATCHER_DATA_DIR": str(tmp / name)},
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                urls.append(f"http://127.0.0.1:{port}")
            for u in urls:
                wait_ready(u)
            queries = [rng.choice(sents)[:40] for _ in range(200)]
            out: dict = {"encoder": args.encoder, "cpu_count": os.cpu_count(), "seeded_resources": args.seed}
            with QueryLoad(urls[1], headers, queries, args.query_clients) as load:
                out.update(writes_on_a(urls[0], urls[1], headers, rng, sents, args.writes))
                out.update(import_into_store(env, urls[1], headers, rng, sents, args.import_rows, tmp))
            lat = np.array(load.latencies)
            out["b_search_ms_p50_under_load"] = round(float(np.percentile(lat, 50)), 1)
            out["b_search_ms_p99_under_load"] = round(float(np.percentile(lat, 99)), 1)
            out["b_searches"] = len(lat)
            _stop(servers)  # before the temp dir goes: a replica saves its indexes as it stops
    finally:
        _stop(servers)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    print(json.dumps(out, ensure_ascii=False))


def _stop(servers: list[subprocess.Popen]) -> None:
    while servers:
        server = servers.pop()
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
