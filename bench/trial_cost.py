"""What an interleaved trial costs a match request: latency with and without a ranker on trial.

Builds the synthetic park of bench/park_sim.py, runs its feedback stream until `matcher train ranker`'s own
routine has put a learned candidate on trial, then times `MatchEngine.match(need_id=…)` (the code behind
``POST /v1/match``) for the same needs with the transparent ranker alone and with the candidate interleaved
into every list. Prints one JSON object.

    python -m bench.trial_cost --resources 8000 --needs 400
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from typing import Any

import numpy as np


def measure(resources: int, needs: int, seed: int, repeats: int) -> dict[str, Any]:
    from bench.park_sim import Park, simulate_park
    from matcher.matching.engine import Trial
    from matcher.matching.ranker import TransparentRanker
    from matcher.models.registry import ModelRegistry

    park = Park(n_resources=resources, n_needs=needs, seed=seed)
    try:
        stream = simulate_park(park, max_events=400, every=50, seed=seed)
        registry = ModelRegistry.for_settings(park.settings)
        trial = registry.trial("ranker")
        candidate_id = (
            trial["id"]
            if trial
            else next((v.id for v in reversed(registry.list()) if v.kind == "ranker"), None)
        )
        if candidate_id is None:
            sys.exit("error: the stream trained no ranker to put on trial")
        candidate = registry.load(candidate_id)
        park.engine.ranker = TransparentRanker()
        ids = list(park.needs)

        def timed(with_trial: bool) -> list[float]:
            park.engine.trial = Trial(candidate, 1.0) if with_trial else None
            out = []
            for _ in range(repeats):
                for n in ids:
                    t0 = time.perf_counter()
                    park.serve(n, k=10)
                    out.append((time.perf_counter() - t0) * 1000)
            return out

        timed(False)  # warm caches
        plain, interleaved = timed(False), timed(True)
    finally:
        park.close()

    def summary(v: list[float]) -> dict[str, float]:
        return {
            "p50_ms": round(float(np.percentile(v, 50)), 2),
            "p99_ms": round(float(np.percentile(v, 99)), 2),
            "requests": len(v),
        }

    return {
        "resources": resources,
        "needs": len(ids),
        "candidate": candidate_id,
        "candidate_class": type(candidate).__name__,
        "stream_events": stream["curve"][-1]["events"],
        "plain": summary(plain),
        "interleaved": summary(interleaved),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--resources", type=int, default=8000)
    p.add_argument("--needs", type=int, default=400)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=2, help="passes over the needs per setting")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(json.dumps(measure(args.resources, args.needs, args.seed, args.repeats), indent=2))


if __name__ == "__main__":
    main()
