"""HTTP benchmark of the match path: /v1/match latency p50/p99 and throughput at N resources, and import
throughput with index updates, one uvicorn worker, the configured encoder. Prints one JSON object.

    python bench/match_bench.py --resources 10000 100000 --encoder data/models/encoder-default

Records are synthesised by resampling sentences of the CSL corpus when ../shared/data is present, else
from the project's own demo records, so nothing of the public data is written outside a temp dir."""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "research_results" / "csl_corpus.jsonl"
KINDS = ("result", "scenario", "fund", "incubator")


def sentences() -> list[str]:
    out: list[str] = []
    if CORPUS.exists():
        with CORPUS.open(encoding="utf-8") as fh:
            for line in fh:
                out += [s for s in re.split(r"[。；.;]", json.loads(line)["abstract"]) if len(s) > 8]
    else:
        from matcher.demo.dataset import own_records

        for name in ("results", "scenarios", "funds", "incubators", "needs"):
            for r in own_records(name):
                out += [s for s in re.split(r"[。；.;]", r.get("description", "")) if len(s) > 8]
    return out


def record(rng: random.Random, sents: list[str], i: int) -> dict:
    kind = KINDS[i % 4]
    details = {
        "result": {"holder": f"研究院{rng.randrange(300)}", "trl": rng.randint(1, 9)},
        "scenario": {"owner": f"场景方{rng.randrange(300)}", "budget": rng.randrange(10, 500) * 1e4},
        "fund": {
            "manager": f"基金管理人{rng.randrange(200)}",
            "ticket_min": 1e6,
            "ticket_max": rng.choice([1e7, 5e7, 2e8]),
        },
        "incubator": {"operator": f"运营方{rng.randrange(200)}", "capacity": rng.randrange(10, 200)},
    }[kind]
    text = "。".join(rng.sample(sents, 3))
    return {
        "kind": kind,
        "external_id": f"bench-{i}",
        "title": text[:30],
        "description": text,
        "details": details,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 1800) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit("server did not become ready")


def peak_rss_mb(pid: int) -> float | None:
    """The server's peak resident memory (VmHWM), on Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def run_size(n: int, encoder: str, sents: list[str], queries: int, import_n: int) -> dict:
    rng = random.Random(n)
    with tempfile.TemporaryDirectory(prefix="parkmatch-bench-") as tmp:
        # a latency benchmark: the per-key request limits would turn its load into 429s
        env = dict(
            os.environ,
            MATCHER_DATA_DIR=tmp,
            MATCHER_ENCODER=encoder,
            MATCHER_LOG_LEVEL="WARNING",
            MATCHER_RATE_LIMIT_ENABLED="false",
        )
        env.pop("MATCHER_DATABASE_URL", None)
        key = (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "matcher.cli.main",
                    "keys",
                    "create",
                    "--tenant",
                    "bench",
                    "--role",
                    "admin",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        # the store is filled through the importer (same validation and upsert path as the API), in files
        # that stay under the import limits (MATCHER_MAX_IMPORT_BYTES / _ROWS)
        t0 = time.perf_counter()
        for start in range(0, n, 20_000):
            path = Path(tmp) / f"seed-{start}.jsonl"
            with path.open("w", encoding="utf-8") as fh:
                for i in range(start, min(n, start + 20_000)):
                    fh.write(json.dumps(record(rng, sents, i), ensure_ascii=False) + "\n")
            done = subprocess.run(
                [sys.executable, "-m", "matcher.cli.main", "import", str(path), "--tenant", "bench"],
                env=env,
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise SystemExit(f"seeding failed: {done.stderr.strip()[-500:]}")
        seed_s = time.perf_counter() - t0
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "matcher.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(url)
            start_s = time.perf_counter() - t0
            headers = {"Authorization": f"Bearer {key}"}
            qs = [rng.choice(sents)[:60] for _ in range(queries)]
            with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
                for q in qs[:20]:  # warm-up
                    c.post("/v1/match", json={"text": q, "k": 10})
                lat = []
                for q in qs:
                    t = time.perf_counter()
                    r = c.post("/v1/match", json={"text": q, "k": 10})
                    lat.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text
            t = time.perf_counter()

            def one(q: str) -> None:
                with httpx.Client(base_url=url, headers=headers, timeout=30) as c2:
                    c2.post("/v1/match", json={"text": q, "k": 10})

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(one, qs))
            qps = len(qs) / (time.perf_counter() - t)
            body = "\n".join(
                json.dumps(record(rng, sents, n + i), ensure_ascii=False) for i in range(import_n)
            ).encode()
            t = time.perf_counter()
            r = httpx.post(
                url + "/v1/resources:import",
                content=body,
                timeout=600,
                headers={**headers, "Content-Type": "application/x-ndjson"},
            )
            import_s = time.perf_counter() - t
            assert r.status_code == 200, r.text
            rss_mb = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=60)
        arr = np.array(lat)
        return {
            "resources": n,
            "seed_import_s": round(seed_s, 1),
            "server_start_s": round(start_s, 1),
            "match_ms_p50": round(float(np.percentile(arr, 50)), 2),
            "match_ms_p99": round(float(np.percentile(arr, 99)), 2),
            "match_qps_4_clients": round(qps, 1),
            "server_peak_rss_mb": rss_mb,
            "import_rows": import_n,
            "import_rows_per_s": round(import_n / import_s, 1),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resources", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--encoder", required=True, help="model path (e.g. data/models/encoder-default)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--import-rows", type=int, default=2000)
    args = ap.parse_args()
    sents = sentences()
    out = {"encoder": args.encoder, "cpu_count": os.cpu_count(), "runs": []}
    for n in args.resources:
        out["runs"].append(run_size(n, args.encoder, sents, args.queries, args.import_rows))
        print(json.dumps(out["runs"][-1]), file=sys.stderr)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
