"""How fast a new replica becomes ready from an index snapshot, against indexing the store itself. Prints JSON.

    python -m bench.snapshot_bench --resources 20000 --changed 200

Seeds a SQLite store with N resources through `matcher import` (records as bench/match_bench.py makes them),
starts replica A on its own data dir (it indexes the store: the cost without snapshots), writes a snapshot
with `matcher snapshot save`, changes `--changed` records in the store, then starts replica B on an empty data
dir over the same store with the snapshot directory set: it copies the snapshot in and re-indexes only the
changed records. Times are wall seconds from process start to /readyz, on the same machine in the same run
(compare them as a ratio); the CPU seconds of each process are given too."""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.match_bench import free_port, record, sentences, wait_ready


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "matcher.cli.main", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"matcher {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _serve_until_ready(env: dict[str, str]) -> tuple[float, float]:
    """Start `matcher serve`, wait for /readyz, stop it; (wall seconds to ready, CPU seconds of the process)."""
    port = free_port()
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "matcher.cli.main", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        ready = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait(timeout=120)
    return ready, _children_cpu() - cpu0


def run(n: int, changed: int, encoder: str) -> dict:
    rng = random.Random(n)
    sents = sentences()
    with tempfile.TemporaryDirectory(prefix="parkmatch-snap-") as tmp:
        root = Path(tmp)
        db_url = f"sqlite:///{root / 'store.db'}"
        base = dict(
            os.environ,
            MATCHER_DATABASE_URL=db_url,
            MATCHER_ENCODER=encoder,
            MATCHER_LOG_LEVEL="WARNING",
            MATCHER_SNAPSHOT_DIR=str(root / "snapshots"),
            MATCHER_SNAPSHOT_EVERY_S="0",
        )
        env_a = dict(base, MATCHER_DATA_DIR=str(root / "a"))
        env_b = dict(base, MATCHER_DATA_DIR=str(root / "b"))
        for start in range(0, n, 20_000):
            path = root / f"seed-{start}.jsonl"
            rows = (
                json.dumps(record(rng, sents, i), ensure_ascii=False)
                for i in range(start, min(n, start + 20_000))
            )
            path.write_text("\n".join(rows) + "\n", encoding="utf-8")
            _cli(env_a, "import", str(path), "--tenant", "bench")
        full_s, full_cpu = _serve_until_ready(env_a)  # replica A indexes the whole store
        t0 = time.perf_counter()
        saved = json.loads(_cli(env_a, "snapshot", "save").strip().splitlines()[-1])
        save_s = time.perf_counter() - t0
        if changed:  # the store moves on after the snapshot: upserts by external id change these records
            path = root / "changed.jsonl"
            rows = []
            for i in rng.sample(range(n), changed):
                row = record(rng, sents, i)
                row["external_id"] = f"bench-{i}"
                rows.append(json.dumps(row, ensure_ascii=False))
            path.write_text("\n".join(rows) + "\n", encoding="utf-8")
            _cli(env_a, "import", str(path), "--tenant", "bench")
        seeded_s, seeded_cpu = _serve_until_ready(env_b)  # replica B starts from the snapshot
        size = sum(p.stat().st_size for p in Path(saved["path"]).rglob("*") if p.is_file())
        return {
            "resources": n,
            "changed_after_snapshot": changed,
            "ready_s_indexing_the_store": round(full_s, 1),
            "ready_cpu_s_indexing_the_store": round(full_cpu, 1),
            "snapshot_save_s": round(save_s, 1),
            "snapshot_mb": round(size / 2**20, 1),
            "ready_s_from_snapshot": round(seeded_s, 1),
            "ready_cpu_s_from_snapshot": round(seeded_cpu, 1),
            "speedup_wall": round(full_s / seeded_s, 2),
            "speedup_cpu": round(full_cpu / max(seeded_cpu, 1e-9), 2),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resources", type=int, nargs="+", default=[20_000])
    ap.add_argument("--changed", type=int, default=200, help="records changed after the snapshot")
    ap.add_argument("--encoder", default="default")
    args = ap.parse_args()
    print(json.dumps({"runs": [run(n, args.changed, args.encoder) for n in args.resources]}, indent=2))


if __name__ == "__main__":
    main()
