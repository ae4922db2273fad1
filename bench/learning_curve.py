"""Simulated feedback stream: does learning from outcomes move the promoted ranker's held-out nDCG@10 upward?

Scripted users work through csl-need2doc-dev: each session serves one query's candidates (from the production
match path) ranked by the ranker in service, shows the top 10, and the user examines position p with
probability (1/p)^eta (position bias); an examined relevant document (qrels) is accepted, an examined
irrelevant one is rejected with a small probability. Every 50 feedback events, up to 500, a candidate ranker
is trained on the logged impressions + feedback and compared with the one in service on held-out *sessions*
(split by query); it is promoted when the 95 % lower bound of its gain is above zero, and put on an
interleaved trial when the interval straddles zero (the production rule, training/rankers/promotion.py and
matcher/models/trial.py; ``--no-trial`` turns trials off). The curve reports, after each step, the nDCG@10 of the ranker in service on a held-out half of the
queries that no simulated user ever saw.

Usage::

    python -m bench.learning_curve --encoder /path/to/encoder --out /tmp/parkmatch-learning-curve

``--scenario park`` runs the same stream over a synthetic park whose records carry the typed facts (TRL,
regions, fund stages and tickets, scenario budgets and deadlines, incubator facilities) and whose needs state
amounts, stages, TRL horizons and regions; the users accept what a fixed, synthetic hidden rule calls a true
match (bench/park_sim.py). Matches are served by `MatchEngine.match` over a temporary store, impressions and
feedback go through the product's own logging, and the curve is nDCG@10 on held-out needs::

    python -m bench.learning_curve --scenario park --out /tmp/parkmatch-park-curve
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.ranker_eval import DEFAULT_CORPUS, DEFAULT_SET, bench_encoder, collect
from matcher.matching.interleave import preference, team_draft
from matcher.matching.ranker import TransparentRanker
from matcher.models.trial import PLANNED_VOTES, judge
from training.data.labels import LabelledRows
from training.evaluation.compare import (
    NotEnoughData,
    all_groups,
    grouped_split,
    per_query_ndcg,
    train_and_compare,
)


def simulate(
    data: LabelledRows,
    *,
    max_events: int = 500,
    every: int = 50,
    shown: int = 10,
    eta: float = 1.0,
    reject_prob: float = 0.1,
    seed: int = 0,
    trial: bool = True,
    planned_votes: int = PLANNED_VOTES,
) -> dict[str, Any]:
    """The stream over precomputed candidates, with the product's promotion rule: a candidate is activated when
    its logged comparison's interval is above zero, and put on interleaved trial (every list team-draft
    interleaved, judged once at `planned_votes` decided lists, `matcher.models.trial.judge`) when it straddles zero."""
    rng = np.random.default_rng(seed)
    coin = random.Random(seed)
    pool_g, eval_g = grouped_split(all_groups(data), test_size=0.5, seed=seed)
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(data.groups):
        by_group.setdefault(g, []).append(i)
    pool = [g for g in pool_g if g in by_group]

    def order(ranker: Any, idx: list[int]) -> list[int]:
        scores = ranker.score([data.rows[i] for i in idx])
        return [idx[j] for j in np.lexsort((np.arange(len(idx)), -scores))]

    serving: Any = TransparentRanker()
    on_trial: Any = None
    wins = losses = 0
    log = LabelledRows(source={"kind": "simulated"})
    events = sessions = interleaved = 0
    curve = [
        {
            "events": 0,
            "serving": serving.version,
            "ndcg@10": _mean(per_query_ndcg(serving, data, eval_g)),
            "candidate_ndcg@10": None,
            "ci95": None,
            "promoted": False,
            "reason": "cold start: transparent default",
        }
    ]
    next_check = every
    while events < max_events:
        q = pool[int(rng.integers(len(pool)))]
        idx = by_group[q]
        teams: dict[int, str] | None = None
        if on_trial is not None:
            merged = team_draft(order(serving, idx), order(on_trial, idx), shown, coin)
            shown_rows, teams = [i for i, _ in merged], dict(merged)
            interleaved += 1
        else:
            shown_rows = order(serving, idx)[:shown]
        session = LabelledRows()
        got = 0
        accepted: set[int] = set()
        for pos, i in enumerate(shown_rows, start=1):
            if rng.random() >= pos ** (-eta):
                label = 0
            elif data.labels[i] > 0:
                label, got = 1, got + 1  # accepted
                accepted.add(i)
            else:
                label = 0
                got += int(rng.random() < reject_prob)  # an explicit rejection is an event too
            session.add(f"{q}#{sessions}", data.items[i], data.rows[i], label, pos)
            session.units[f"{q}#{sessions}"] = q  # lists of one query stay on one side of a split
        sessions += 1
        if got == 0:  # nobody reacted: the list is not training data (see training.data.labels.from_feedback)
            continue
        if teams is not None and accepted:
            vote = preference(teams, accepted)
            wins, losses = wins + (vote > 0), losses + (vote < 0)
        log.extend(session)
        events += got
        if events < next_check:
            continue
        next_check += every
        point: dict[str, Any] = {"events": events, "sessions": sessions}
        promoted_by_trial = False
        if on_trial is not None:
            decision, reason, ci = judge(wins, losses, planned=planned_votes)
            point["trial"] = {
                "model": on_trial.version,
                "wins": wins,
                "losses": losses,
                "ci95": [round(ci[0], 4), round(ci[1], 4)],
                "decision": decision,
                "reason": reason,
            }
            if decision == "promote":
                serving, promoted_by_trial = on_trial, True
            if decision != "continue":
                on_trial, wins, losses = None, 0, 0
        try:
            cand, cmp, _ = train_and_compare(log, serving, params={"eta": eta}, seed=seed)
        except NotEnoughData as exc:
            point |= {
                "promoted": promoted_by_trial,
                "reason": str(exc).split(";")[0],
                "candidate_ndcg@10": None,
                "ci95": None,
            }
        else:
            cand.version = f"learned@{events}"
            point |= {
                "candidate_ndcg@10": _mean(per_query_ndcg(cand, data, eval_g)),
                "ci95": [round(cmp.ci_low, 4), round(cmp.ci_high, 4)],
                "promoted": cmp.promote or promoted_by_trial,
                "reason": "won its held-out comparison" if cmp.promote else "not better with 95 % confidence",
            }
            if cmp.promote:
                serving, on_trial, wins, losses = cand, None, 0, 0
            elif trial and on_trial is None and cmp.ci_high > 0:
                on_trial = cand
                point["put_on_trial"] = cand.version
        point |= {
            "serving": serving.version,
            "on_trial": None if on_trial is None else on_trial.version,
            "ndcg@10": _mean(per_query_ndcg(serving, data, eval_g)),
        }
        curve.append(point)
    return {
        "queries": {"simulated": len(pool), "held_out": len(eval_g)},
        "shown_per_session": shown,
        "eta": eta,
        "seed": seed,
        "trials": trial,
        "interleaved_sessions": interleaved,
        "curve": curve,
        "start_ndcg@10": curve[0]["ndcg@10"],
        "final_ndcg@10": curve[-1]["ndcg@10"],
        "final_serving": curve[-1]["serving"],
        "promotions": [p["events"] for p in curve if p.get("promoted")],
    }


def _mean(values: dict[str, float]) -> float:
    return round(float(np.mean(list(values.values()))), 4) if values else 0.0


def plot(result: dict[str, Any], path: Path, *, title: str = "csl-need2doc-dev, held-out queries") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = result["curve"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.step([p["events"] for p in c], [p["ndcg@10"] for p in c], where="post", label="ranker in service")
    cand = [(p["events"], p["candidate_ndcg@10"]) for p in c if p.get("candidate_ndcg@10") is not None]
    if cand:
        ax.plot(*zip(*cand, strict=True), "o", alpha=0.6, label="candidate (trained at this step)")
    for p in c:
        if p.get("promoted"):
            ax.axvline(p["events"], color="green", alpha=0.25)
    ax.set_xlabel("feedback events")
    ax.set_ylabel("held-out nDCG@10")
    ax.set_title(f"Learning from simulated outcomes ({title})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--scenario",
        choices=("csl", "park"),
        default="csl",
        help="csl: csl-need2doc-dev qrels (default); park: a synthetic park with typed facts",
    )
    p.add_argument("--resources", type=int, default=8000, help="park: number of resources (four kinds)")
    p.add_argument("--needs", type=int, default=400, help="park: number of needs (half are held out)")
    p.add_argument("--dataset", default=DEFAULT_SET)
    p.add_argument("--split", default="dev")
    p.add_argument(
        "--encoder",
        type=Path,
        default=None,
        help="an encoder directory (csl default: train one; park default: a feature-hashing stand-in)",
    )
    p.add_argument("--corpus", default=DEFAULT_CORPUS)
    p.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "parkmatch-ranker-bench")
    p.add_argument("--out", type=Path, default=Path("learning-curve"))
    p.add_argument("--events", type=int, default=500)
    p.add_argument("--every", type=int, default=50)
    p.add_argument("--eta", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--no-trial",
        dest="trial",
        action="store_false",
        help="promote on the logged comparison alone (no interleaved trials)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.scenario == "park":
        run_park(args)
        return
    args.work_dir.mkdir(parents=True, exist_ok=True)
    enc = args.encoder or bench_encoder(args.work_dir, args.corpus, Path(args.dataset).parent)
    cache = args.work_dir / f"rows-{Path(args.dataset).name}-{args.split}.pkl"
    data = collect(args.dataset, args.split, enc, cache=cache)
    result = simulate(
        data, max_events=args.events, every=args.every, eta=args.eta, seed=args.seed, trial=args.trial
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "learning_curve.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    plot(result, args.out / "learning_curve.png")
    print(json.dumps(result, ensure_ascii=False, indent=2))


def run_park(args: argparse.Namespace) -> None:
    from bench.park_sim import Park, simulate_park

    encoder = None
    if args.encoder is not None:
        from embeddings.encoders.sentence import load_encoder

        encoder = load_encoder(str(args.encoder))
    park = Park(n_resources=args.resources, n_needs=args.needs, seed=args.seed, encoder=encoder)
    try:
        result = simulate_park(
            park, max_events=args.events, every=args.every, eta=args.eta, seed=args.seed, trial=args.trial
        )
    finally:
        park.close()
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "learning_curve.png"
    try:
        plot(result, png, title="synthetic park, held-out needs")
        result["png"] = str(png)
    except ImportError:
        result["png"] = None
        result["png_note"] = "matplotlib is not installed: no PNG was written"
    (args.out / "learning_curve.json").write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
