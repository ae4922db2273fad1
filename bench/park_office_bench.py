"""What a park office runs, timed at scale: a docking event's meeting plan (200 enterprises x 200 resource
holders over 12 slots and 40 tables by default) and an industry chain's placement (10,000 enterprises on a
30-link chain); prints one JSON object.

Synthetic bilingual records from bench/digest_bench.py (park industries, providers, open needs) in a scratch
store; the engine is the service's (`MatchEngine`: the configured encoder, or one trained here, see
digest_bench's --encoder). The event runs `matcher.events.schedule.schedule_event` end to end (the pipeline's
pair scores, the HiGHS plan, the stored meetings and impressions); the chain runs
`matcher.chains.placement.place_chain` over every enterprise, need and resource of the park.

Usage::

    python -m bench.park_office_bench                                  # the figures of docs/park-office.md
    python -m bench.park_office_bench --enterprises 2000 --links 10 --event-size 50 --encoder hashing

Reported: the event planned twice, for the total match score alone (`event.plan`) and with a coverage bonus of
1 (`event.plan_seating_everyone`), each with `seconds` (score: the pipeline's pair scores; solve: HiGHS and the
slotting; total: the whole call with its writes) and `gap` ((bound - objective) / bound: 0 proves the plan
optimal); `chain.seconds` (place: every record of the park scored against every link and written;
get_with_gaps: GET's view with the gaps' candidates), and the machine's cores and load."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from bench.digest_bench import INDUSTRIES, peak_rss_mb, populate, resolve_encoder

TENANT = "park"


def run_event(engine, db, args) -> dict:
    from sqlmodel import Session, col, select

    from matcher.domain.event_schemas import DemandParticipant, EventCreate, SupplyParticipant
    from matcher.domain.tables import Enterprise, Resource
    from matcher.events import schedule, store
    from matcher.store.keys import Caller

    caller = Caller(tenant=TENANT, role="admin")
    rng = random.Random(args.seed)
    slots = [
        {
            "start": f"{9 + (k * 20) // 60:02d}:{(k * 20) % 60:02d}",
            "end": f"{9 + (k * 20 + 20) // 60:02d}:{(k * 20 + 20) % 60:02d}",
        }
        for k in range(args.slots)
    ]
    with Session(db, expire_on_commit=False) as s:
        ents = list(s.exec(select(Enterprise.id).order_by(Enterprise.id).limit(args.event_size)))
        res = list(s.exec(select(Resource.id).order_by(col(Resource.id).desc()).limit(args.event_size)))
        ev = store.create_event(
            s,
            caller=caller,
            data=EventCreate(
                title="对接会",
                date="2031-05-20",
                slots=slots,
                tables=args.tables,
                max_meetings_per_participant=args.max_meetings,
            ),
        )
        supply = [
            store.add_participant(s, caller=caller, event_id=ev.id, data=SupplyParticipant(resource_id=r)).id
            for r in res
        ]
        for e in ents:
            # one enterprise in ten names a holder it wants to meet, one in ten one it avoids
            want = [rng.choice(supply)] if rng.random() < 0.1 else []
            avoid = [x for x in [rng.choice(supply)] if x not in want] if rng.random() < 0.1 else []
            store.add_participant(
                s,
                caller=caller,
                event_id=ev.id,
                data=DemandParticipant(enterprise_id=e, want=want, avoid=avoid),
            )
        s.commit()
        runs = {}
        for name, bonus in (("plan", 0.0), ("plan_seating_everyone", 1.0)):
            t0 = time.perf_counter()
            sched = schedule.schedule_event(
                s,
                caller=caller,
                engine=engine,
                event_id=ev.id,
                time_limit_s=args.time_limit,
                coverage_bonus=bonus,
            )
            s.commit()
            runs[name] = _plan(sched, time.perf_counter() - t0)
    return {
        "enterprises": len(ents),
        "resources": len(res),
        "slots": args.slots,
        "tables": args.tables,
        "max_meetings_per_participant": args.max_meetings,
        **runs,
    }


def _plan(sched, total: float) -> dict:
    st = sched.stats
    return {
        "coverage_bonus": st["coverage_bonus"],
        "meetings": st["meetings"],
        "capacity": st["capacity"],
        "participants_met": st["participants_met"],
        "left_out": len(sched.left_out),
        "total_score": st["total_score"],
        "objective": sched.objective,
        "bound": sched.bound,
        "gap": sched.gap,
        "status": sched.status,
        "pairs_fitting": st["pairs_fitting"],
        "candidates": st["candidates"],
        "rounds": st["rounds"],
        "unmet_wants": len(sched.unmet_wants),
        "seconds": {
            "score": st["seconds"]["score"],
            "solve": st["seconds"]["solve"],
            "total": round(total, 2),
        },
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=10_000, help="enterprises of the park")
    ap.add_argument("--resources", type=int, default=5_000, help="resources of the park")
    ap.add_argument("--event-size", type=int, default=200, help="participants on each side")
    ap.add_argument("--slots", type=int, default=12)
    ap.add_argument("--tables", type=int, default=40)
    ap.add_argument("--max-meetings", type=int, default=6)
    ap.add_argument("--time-limit", type=float, default=25.0)
    ap.add_argument("--links", type=int, default=30)
    ap.add_argument("--skip-chain", action="store_true")
    ap.add_argument(
        "--encoder", default="configured", help="configured (default) | a model path or name | hashing"
    )
    ap.add_argument("--train-records", type=int, default=20_000)
    ap.add_argument("--train-epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work-dir", type=Path, default=None)
    args = ap.parse_args(argv)
    scratch = args.work_dir is None
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="park-office-bench-"))
    try:
        run(args, work)
    finally:
        if scratch:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> None:
    from matcher.domain.taxonomy import default_taxonomy
    from matcher.matching.engine import MatchEngine
    from matcher.settings import Settings
    from matcher.store.db import init_db, make_engine

    shutil.rmtree(work / "store", ignore_errors=True)
    settings = Settings(data_dir=work / "store", encoder="default")
    db = make_engine(settings)
    init_db(db)
    t0 = time.perf_counter()
    populate(db, args.enterprises, args.resources, args.seed)
    populate_s = time.perf_counter() - t0
    encoder, encoder_label, train_s = resolve_encoder(args, work, db)
    t1 = time.perf_counter()
    engine = MatchEngine(settings, db, default_taxonomy(), encoder)
    engine.save = lambda: None  # a throwaway store
    engine.start(background_save_s=0)
    index_s = time.perf_counter() - t1
    load_before = os.getloadavg()[0]
    out = {
        "store": {"enterprises": args.enterprises, "resources": args.resources},
        "encoder": encoder.model_id,
        "encoder_source": encoder_label,
        "train_s": round(train_s, 1),
        "populate_s": round(populate_s, 1),
        "index_s": round(index_s, 1),
        "event": run_event(engine, db, args),
    }
    if not args.skip_chain:
        out["chain"] = run_chain(engine, db, args)
    out.update(
        peak_rss_mb=peak_rss_mb(),
        cpus=os.cpu_count(),
        load_avg_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )
    print(json.dumps(out, ensure_ascii=False))


def chain_links(n: int) -> list[dict]:
    """A chain of `n` links from the synthetic industries: per industry an upstream link for each of its terms
    and a downstream link for the industry's applications."""
    links: list[dict] = []
    for ind, (zh, en, terms) in INDUSTRIES.items():
        down = f"{ind}-apps"
        for k, term in enumerate(terms):
            links.append(
                {
                    "key": f"{ind}-{k}",
                    "name_zh": term,
                    "name_en": f"{en} {k}",
                    "description": f"{zh}：{term}",
                    "stage": "upstream",
                    "feeds": [down],
                }
            )
        links.append(
            {
                "key": down,
                "name_zh": f"{zh}应用",
                "name_en": f"{en} applications",
                "description": f"{zh}的系统集成与应用服务",
                "stage": "downstream",
            }
        )
    while len(links) < n:  # more links than the industries give: midstream links by pairs of terms
        k = len(links)
        ind = list(INDUSTRIES)[k % len(INDUSTRIES)]
        zh, en, terms = INDUSTRIES[ind]
        a, b = terms[k % 4], terms[(k + 1) % 4]
        links.append(
            {
                "key": f"mid-{k}",
                "name_zh": f"{a}与{b}",
                "name_en": f"{en} mid {k}",
                "description": f"{zh}{a}{b}集成",
                "stage": "midstream",
                "feeds": [f"{ind}-apps"],
            }
        )
    links = links[:n]
    keys = {x["key"] for x in links}
    for x in links:
        x["feeds"] = [f for f in x.get("feeds", []) if f in keys]
    return links


def run_chain(engine, db, args) -> dict:
    from sqlmodel import Session

    from matcher.chains import placement, store, view
    from matcher.domain.chain_schemas import ChainCreate
    from matcher.store.keys import Caller

    caller = Caller(tenant=TENANT, role="admin")
    links = chain_links(args.links)
    with Session(db, expire_on_commit=False) as s:
        chain = store.create_chain(
            s, caller=caller, data=ChainCreate(name_zh="园区产业链", name_en="Park chain", links=links)
        )
        s.commit()
        t0 = time.perf_counter()
        chain = placement.place_chain(s, caller=caller, engine=engine, chain_id=chain.id)
        s.commit()
        place_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        shown = view.chain_view(s, caller=caller, engine=engine, chain_id=chain.id, per_link=50)
        view_s = time.perf_counter() - t1
    st = chain.placement_stats
    return {
        "links": len(links),
        "records": st["records"],
        "placed": st["placed"],
        "placements": st["placements"],
        "gaps": len(shown.gaps),
        "seconds": {
            "place": round(place_s, 2),
            "score": st["seconds"]["score"],
            "write": st["seconds"]["write"],
            "get_with_gaps": round(view_s, 2),
        },
    }


if __name__ == "__main__":
    main()
