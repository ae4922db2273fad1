"""What one serving replica holds in memory at N resources, broken down: the Python baseline (interpreter and
the libraries a replica imports), the encoder, the FAISS vectors, the BM25 postings, the filter catalogs and
the record stamps; then the RSS of a real `matcher serve` that loads those indexes, and its search
throughput. Prints one JSON object per size.

    python bench/replica_memory.py --encoder ~/.cache/parkmatch/models/e5-small-static-1 --sizes 50000 100000

For each size a SQLite store is seeded with synthetic resources (`matcher import`, records as in
bench/match_bench.py) in a temp dir. A child process then builds the supply side step by step and reads its
own RSS after each step (after a garbage collection and `malloc_trim`, so that freed temporaries are not
counted): each figure is the growth of the process's resident memory that the component caused. It saves the
indexes into the data dir, and `matcher serve` is started on it (loading, not re-embedding) for the check."""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MB = 1024 * 1024


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settle() -> int:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    return rss()


def child() -> None:
    """Run inside the measured process (MATCHER_* settings from the environment); prints one JSON object."""
    bare = settle()
    import numpy as np
    from sqlmodel import Session, select

    import api.app  # noqa: F401 - what a replica imports
    from embeddings.text import lexical_terms
    from matcher.domain.tables import Resource
    from matcher.domain.taxonomy import default_taxonomy
    from matcher.indexing.documents import resource_document
    from matcher.indexing.indexer import Indexer
    from matcher.indexing.metas import resource_meta, stamp
    from matcher.models.encoder import load_configured_encoder
    from matcher.settings import Settings
    from matcher.store import feed
    from matcher.store.db import make_engine

    out: dict = {}
    settings = Settings()
    db = make_engine(settings)
    taxonomy = default_taxonomy()
    base = settle()
    out["python_baseline_mb"] = round(base / MB, 1)
    out["of_which_interpreter_mb"] = round(bare / MB, 1)

    encoder = load_configured_encoder(settings)
    encoder.encode_documents(["预热"])  # lazily loaded parts, too
    m = settle()
    out["encoder_mb"] = round((m - base) / MB, 1)
    out["dimension"] = encoder.dimension

    indexer = Indexer(settings.model_copy(update={"snapshot_dir": None}), db, taxonomy, encoder)
    head = feed.head(db)
    with Session(db) as session:
        rows = list(session.exec(select(Resource)))
    n = len(rows)
    out["resources"] = n
    m = settle()
    indexer.resources.upsert(resource_meta(r, taxonomy) for r in rows)
    m2 = settle()
    out["catalogs_mb"] = round((m2 - m) / MB, 1)

    ids = [int(r.id) for r in rows]
    stamps = [stamp(r) for r in rows]
    t0 = time.perf_counter()
    terms: list[list[str]] = []
    parts = []
    for start in range(0, n, 256):
        docs = [resource_document(r, taxonomy) for r in rows[start : start + 256]]
        terms += [lexical_terms(d) for d in docs]
        parts.append(np.asarray(encoder.encode_documents(docs), dtype=np.float32))
    vecs = np.concatenate(parts)
    del parts, rows
    out["embed_s"] = round(time.perf_counter() - t0, 1)
    arr = np.asarray(ids, dtype=np.int64)

    m = settle()
    indexer.supply.dense.upsert(arr, vecs)
    m2 = settle()
    out["faiss_vectors_mb"] = round((m2 - m) / MB, 1)
    out["faiss_raw_vectors_mb"] = round(vecs.nbytes / MB, 1)
    del vecs
    m = settle()
    indexer.supply.lexical.upsert_many(ids, terms)
    m2 = settle()
    out["bm25_postings_mb"] = round((m2 - m) / MB, 1)
    out["bm25_terms_per_record"] = round(sum(len(t) for t in terms) / max(1, n), 1)
    del terms
    m = settle()
    indexer.supply.stamps = dict(zip(ids, stamps, strict=True))
    m2 = settle()
    out["stamps_mb"] = round((m2 - m) / MB, 1)
    out["builder_rss_mb"] = round(m2 / MB, 1)
    indexer.feed_seq = head
    indexer.save()
    out["index_on_disk_mb"] = round(
        sum(p.stat().st_size for p in settings.index_dir.rglob("*") if p.is_file()) / MB, 1
    )
    print(json.dumps(out))


def vm_rss(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serve_check(env: dict, seconds: float, clients: int, key: str, queries: list[str]) -> dict:
    import httpx
    from match_bench import free_port, wait_ready

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "matcher.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        wait_ready(url)
        out = {
            "serve_ready_s": round(time.perf_counter() - t0, 1),
            "serve_rss_ready_mb": round(vm_rss(proc.pid), 1),
        }
        done: list[float] = []
        stop = time.perf_counter() + seconds

        def run() -> None:
            rng = random.Random()
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
                while time.perf_counter() < stop:
                    t = time.perf_counter()
                    r = c.get("/v1/search", params={"q": rng.choice(queries), "k": 10})
                    if r.status_code == 200:
                        done.append(time.perf_counter() - t)

        threads = [threading.Thread(target=run) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        lat = sorted(done)
        out["search_per_s"] = round(len(lat) / seconds, 1)
        out["search_ms_p50"] = round(1000 * lat[len(lat) // 2], 1) if lat else None
        out["serve_rss_after_queries_mb"] = round(vm_rss(proc.pid), 1)
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child()
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000])
    ap.add_argument("--query-seconds", type=float, default=15.0)
    ap.add_argument("--query-clients", type=int, default=4)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from match_bench import record, sentences

    sents = sentences()
    rng = random.Random(11)
    queries = [rng.choice(sents)[:40] for _ in range(200)]
    for size in args.sizes:
        with tempfile.TemporaryDirectory(prefix="parkmatch-memory-") as tmp_name:
            tmp = Path(tmp_name)
            env = dict(
                os.environ,
                MATCHER_DATABASE_URL=f"sqlite:///{tmp / 'store.db'}",
                MATCHER_DATA_DIR=str(tmp / "data"),
                MATCHER_ENCODER=args.encoder,
                MATCHER_LOG_LEVEL="WARNING",
                MATCHER_RATE_LIMIT_ENABLED="false",
            )

            def cli(*a: str, env: dict = env) -> str:
                done = subprocess.run(
                    [sys.executable, "-m", "matcher.cli.main", *a], env=env, capture_output=True, text=True
                )
                if done.returncode != 0:
                    raise SystemExit(f"matcher {a[0]} failed: {done.stderr.strip()[-500:]}")
                return done.stdout

            cli("migrate")
            key = cli("keys", "create", "--tenant", "bench", "--role", "admin").strip().splitlines()[-1]
            t0 = time.perf_counter()
            for part, first in enumerate(range(0, size, 40_000)):  # files under the import size limit
                path = tmp / f"seed-{part}.jsonl"
                with path.open("w", encoding="utf-8") as fh:
                    for i in range(first, min(size, first + 40_000)):
                        fh.write(json.dumps(record(rng, sents, i), ensure_ascii=False) + "\n")
                cli("import", str(path), "--tenant", "bench")
            seed_s = time.perf_counter() - t0
            measured = subprocess.run(
                [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True
            )
            if measured.returncode != 0:
                raise SystemExit(f"measuring failed: {measured.stderr.strip()[-800:]}")
            out = {
                "size": size,
                "seed_import_s": round(seed_s, 1),
                **json.loads(measured.stdout.splitlines()[-1]),
            }
            parts = ("python_baseline_mb", "encoder_mb", "faiss_vectors_mb", "bm25_postings_mb", "catalogs_mb",
                     "stamps_mb")  # fmt: skip
            out["sum_of_parts_mb"] = round(sum(out[p] for p in parts), 1)
            per = (
                out["faiss_vectors_mb"] + out["bm25_postings_mb"] + out["catalogs_mb"] + out["stamps_mb"]
            ) * MB
            out["per_record_kb"] = round(per / size / 1024, 2)
            out.update(serve_check(env, args.query_seconds, args.query_clients, key, queries))
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
