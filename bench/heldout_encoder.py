"""Train the default static encoder on what no benchmark judges, for honest `matcher eval` figures.

Every document judged by any qrels file of any set under ../shared/data/bench (all splits) is left out, vocabulary
and idf included: what remains is the unjudged CSL abstracts and the unjudged Cranfield documents. Prints one JSON
object with the model path, record counts and training time.

    python -m bench.heldout_encoder --out data/models/encoder-heldout
    MATCHER_ENCODER=data/models/encoder-heldout matcher eval ../shared/data/bench/csl-need2doc-dev --split dev
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bench.encoder_choice import all_judged_ids, load_training_records
from training.encoders.static import train_static_encoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=DATA, help="the shared data directory (bench/, research_results/)"
    )
    ap.add_argument("--out", type=Path, default=Path("data/models/encoder-heldout"))
    args = ap.parse_args()
    if not (args.data / "research_results" / "csl_corpus.jsonl").exists():
        sys.exit(f"error: no CSL corpus under {args.data}/research_results")
    records = load_training_records(args.data)
    judged = all_judged_ids(args.data)
    t0 = time.perf_counter()
    path = train_static_encoder(records, args.out, exclude_ids=judged, show_progress=False)
    print(
        json.dumps(
            {
                "model": str(path),
                "records": len(records),
                "excluded_judged": len(judged & {r["id"] for r in records}),
                "train_s": round(time.perf_counter() - t0, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
