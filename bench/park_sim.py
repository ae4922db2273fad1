"""A synthetic innovation park with the typed facts the product is built on, and a feedback stream over it.

Used by ``python -m bench.learning_curve --scenario park``. Everything here is synthetic: the records are
generated from a seed (industry vocabularies, regions, stages, ticket ranges, TRL, budgets, deadlines,
facilities); no public data is copied.

**The hidden rule ("truly matches").** Fixed before any run and never fitted to the held-out needs; it is what
a park officer would check by hand. A resource truly matches a need when it is of the kind the need seeks, its
*true* industry is the need's industry (the topic; a record's industry tag is missing for 15 % of resources,
so the ranker cannot always read it) and the facts fit:

* fund: its ticket range is known and covers the amount sought, and its stages are known and include the
  enterprise's stage (a fund that does not state them is not one an officer would recommend);
* result: its TRL is known and at least the need's minimum, and its price is within the need's budget;
* scenario: its budget is known and at least the contract value sought, its application deadline is at
  least 14 days away (time to prepare a bid), and it is in the need's region (pilots are on site);
* incubator: it is in the need's region (space is physical).

The production filter already drops funds whose *stated* ticket or stages exclude the need and results whose
stated TRL is too low; records that do not state them pass it and are marked 'unknown'. The truth therefore
depends on the facts (region, budget, deadline, what is unknown, the exact industry) much more strongly than
the transparent default's fixed 30 % fit share assumes, and that is what learning from outcomes can pick up.

Matches are served through the production path: records in a temporary SQLite store, `MatchEngine.match` with
`need_id` (the code behind ``POST /v1/match``), impressions logged as the match route logs them, feedback
recorded with `matcher.outcomes.feedback.record_feedback`, training rows read back with
`training.data.labels.from_feedback`, candidates trained and compared by `training.evaluation.compare.train_and_compare`
(held-out needs, 95 % bootstrap CI), exactly as ``matcher train ranker`` does."""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlmodel import Session

TENANT = "park"
REGIONS = ("北京", "上海", "深圳", "杭州")
REGION_P = (0.55, 0.15, 0.15, 0.15)
STAGES = ("seed", "startup", "growth", "mature")
KINDS = ("result", "scenario", "fund", "incubator")
KIND_WORD = {"result": "科技成果", "scenario": "应用场景", "fund": "投资基金", "incubator": "孵化载体"}
FACILITIES = (
    "中试线",
    "洁净室",
    "检测平台",
    "算力中心",
    "精密加工",
    "P2实验室",
    "动物房",
    "路测场地",
    "储能测试舱",
)
APPLY_DAYS = 14  # a scenario closing sooner leaves no time to prepare a bid

# sector -> leaf industry (taxonomy names) -> its vocabulary; siblings share the sector's words
SECTORS: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "新一代信息技术": (
        ["数字化", "算法", "平台", "软件"],
        {
            "人工智能": ["大模型", "计算机视觉", "语音识别", "知识图谱", "智能体", "推理加速"],
            "集成电路": ["芯片设计", "封装测试", "功率器件", "光刻", "晶圆", "车规级MCU"],
            "网络安全": ["零信任", "态势感知", "漏洞挖掘", "数据脱敏", "密码模块", "入侵检测"],
        },
    ),
    "医药健康": (
        ["临床", "医院", "患者", "注册证"],
        {
            "创新药": ["抗体药物", "小分子", "靶点筛选", "临床前研究", "制剂工艺", "药代动力学"],
            "医疗器械": ["影像设备", "介入导管", "可穿戴监测", "手术器械", "体外诊断", "康复设备"],
            "基因编辑": ["CRISPR", "碱基编辑", "基因治疗", "细胞治疗", "载体递送", "脱靶检测"],
        },
    ),
    "智能装备": (
        ["自动化", "制造", "产线", "控制"],
        {
            "机器人": ["机械臂", "协作机器人", "运动控制", "灵巧手", "移动机器人", "视觉引导"],
            "无人机": ["飞控", "航测", "植保", "低空物流", "垂直起降", "集群编队"],
            "精密仪器": ["光谱仪", "质谱", "原子磁力计", "计量校准", "光学检测", "传感器标定"],
        },
    ),
    "绿色智慧能源": (
        ["低碳", "能源", "电力", "节能"],
        {
            "光伏": ["钙钛矿", "异质结", "组件", "逆变器", "光伏电站", "薄膜电池"],
            "氢能": ["电解水制氢", "燃料电池", "储氢罐", "加氢站", "质子交换膜", "氢气纯化"],
            "储能": ["固态电池", "热管理", "电芯", "液流电池", "储能系统", "电池回收"],
        },
    ),
}
INDUSTRIES: dict[str, tuple[str, list[str], list[str]]] = {
    leaf: (sector, terms, words)
    for sector, (words, leaves) in SECTORS.items()
    for leaf, terms in leaves.items()
}


@dataclass
class ParkNeed:
    id: int  # the Need row id
    industry: str
    kind: str
    stage: str
    region: str
    amount: float | None
    trl_min: int | None


@dataclass
class ParkResource:
    id: int  # the Resource row id
    kind: str
    industry: str  # the true industry (the record's tag is missing for some)
    tagged: bool
    region: str
    facts: dict[str, Any] = field(default_factory=dict)


def truly_matches(need: ParkNeed, r: ParkResource, today: date) -> bool:
    """The hidden rule (see the module docstring)."""
    if r.kind != need.kind or r.industry != need.industry:
        return False
    f = r.facts
    if r.kind == "fund":
        lo, hi, stages = f.get("ticket_min"), f.get("ticket_max"), f.get("stages") or []
        return (
            lo is not None
            and hi is not None
            and need.amount is not None
            and lo <= need.amount <= hi
            and (need.stage in stages)
        )
    if r.kind == "result":
        trl = f.get("trl")
        return (
            trl is not None
            and trl >= (need.trl_min or 1)
            and (need.amount is None or f["price"] <= need.amount)
        )
    if r.kind == "scenario":
        budget, deadline = f.get("budget"), f.get("deadline")
        return (
            budget is not None
            and need.amount is not None
            and budget >= need.amount
            and deadline is not None
            and (date.fromisoformat(deadline) - today).days >= APPLY_DAYS
            and r.region == need.region
        )
    return r.region == need.region  # incubator


def reject_reason(need: ParkNeed, r: ParkResource, today: date) -> str:
    """Why a park user would turn this match down (one of matcher.outcomes.feedback.REASONS)."""
    if r.industry != need.industry:
        return "not_relevant"
    f = r.facts
    if r.kind in ("scenario", "incubator") and r.region != need.region:
        return "region_mismatch"
    if r.kind == "result" and (f.get("trl") is None or f["trl"] < (need.trl_min or 1)):
        return "too_early"
    if (
        r.kind == "scenario"
        and f.get("budget") is not None
        and need.amount is not None
        and f["budget"] >= need.amount
    ):
        return "other"  # the budget fits: the deadline is too close
    return "budget_mismatch" if r.kind != "incubator" else "other"


def _text(rng: random.Random, industry: str, *, confusable: bool) -> tuple[list[str], str]:
    sector, terms, words = INDUSTRIES[industry]
    picked = rng.sample(terms, 2)
    if confusable:  # one term borrowed from a sibling industry: text alone does not settle the topic
        sibling = rng.choice([x for x in SECTORS[sector][1] if x != industry])
        picked[1] = rng.choice(INDUSTRIES[sibling][1])
    topic = "、".join(picked)
    lead = industry if rng.random() < 0.5 else sector
    return picked, f"{lead}领域，{topic}方向，{rng.choice(words)}与{rng.choice(words)}"


def _log_uniform(rng: random.Random, lo_exp: float, hi_exp: float) -> float:
    return float(round(10 ** rng.uniform(lo_exp, hi_exp), -4))


def generate(
    n_resources: int, n_needs: int, seed: int, today: date
) -> tuple[list[dict], list[dict], list[dict]]:
    """(resource rows, enterprise rows, need rows) as plain dicts, with the hidden facts under '_truth'."""
    rng = random.Random(seed)
    leaves = list(INDUSTRIES)
    providers = [
        f"{p}{i:03d}"
        for p in ("京华大学", "中科研究院", "园区创投", "产业集团", "孵化运营")
        for i in range(60)
    ]
    resources = []
    for i in range(1, n_resources + 1):
        kind = KINDS[i % 4]
        industry = rng.choice(leaves)
        tagged = rng.random() >= 0.15
        region = rng.choices(REGIONS, REGION_P)[0]
        picked, body = _text(rng, industry, confusable=rng.random() < 0.3)
        details: dict[str, Any] = {}
        if kind == "fund":
            if rng.random() >= 0.15:
                s = rng.randrange(4)
                details["stages"] = list(STAGES[s : s + rng.choice((1, 2))])
            if rng.random() >= 0.2:
                lo = _log_uniform(rng, 5.5, 7.5)
                details["ticket_min"], details["ticket_max"] = (
                    lo,
                    float(round(lo * 10 ** rng.uniform(0.5, 1.3), -4)),
                )
            extra = f"重点投资{picked[0]}企业"
        elif kind == "result":
            if rng.random() >= 0.15:
                details["trl"] = rng.randint(2, 9)
            details["price"] = _log_uniform(rng, 5.5, 7.3)
            extra = f"{picked[0]}关键技术，可许可或合作开发"
        elif kind == "scenario":
            if rng.random() >= 0.2:
                details["budget"] = _log_uniform(rng, 5.0, 6.8)
            details["deadline"] = (today + timedelta(days=rng.randint(1, 120))).isoformat()
            extra = f"开放{picked[0]}试点应用，征集解决方案"
        else:
            details["facilities"] = rng.sample(FACILITIES, rng.randint(2, 3))
            details["capacity"] = rng.randint(10, 80)
            extra = f"提供{'、'.join(details['facilities'])}，服务{picked[0]}团队"
        resources.append(
            {
                "id": i,
                "kind": kind,
                "title": f"{picked[0]}{KIND_WORD[kind]}{i}",
                "description": f"{body}。{extra}。",
                "industries": [industry] if tagged else [],
                "region": region,
                "provider": rng.choice(providers),
                "details": details,
                "_truth": ParkResource(i, kind, industry, tagged, region, dict(details)),
            }
        )
    enterprises, needs = [], []
    for i in range(1, n_needs + 1):
        industry = rng.choice(leaves)
        kind = KINDS[rng.randrange(4)]
        stage = rng.choice(STAGES)
        region = rng.choices(REGIONS, REGION_P)[0]
        picked, body = _text(rng, industry, confusable=False)
        amount = trl_min = None
        if kind == "fund":
            amount = _log_uniform(rng, 6.0, 8.0)
            title = f"{picked[0]}项目融资{amount / 1e4:.0f}万元"
        elif kind == "result":
            amount, trl_min = _log_uniform(rng, 6.0, 7.5), rng.randint(4, 7)
            title = f"引进{picked[0]}技术"
        elif kind == "scenario":
            amount = _log_uniform(rng, 5.3, 6.5)
            title = f"寻求{picked[0]}落地试点场景"
        else:
            title = f"寻找{picked[0]}团队入驻空间"
        enterprises.append(
            {
                "id": i,
                "name": f"{industry}企业{i}",
                "description": body,
                "industries": [industry],
                "region": region,
                "stage": stage,
            }
        )
        needs.append(
            {
                "id": i,
                "enterprise_id": i,
                "title": title,
                "description": f"{body}。",
                "kinds": [kind],
                "industries": [industry],
                "region": region,
                "amount": amount,
                "trl_min": trl_min,
                "_truth": ParkNeed(i, industry, kind, stage, region, amount, trl_min),
            }
        )
    return resources, enterprises, needs


class Park:
    """The synthetic park in a temporary store, an engine over it, and the truth of every (need, resource)."""

    def __init__(
        self,
        *,
        n_resources: int = 4000,
        n_needs: int = 300,
        seed: int = 0,
        encoder: Any = None,
        data_dir: Path | None = None,
    ) -> None:
        from matcher.domain.tables import Enterprise, Need, Resource
        from matcher.domain.taxonomy import default_taxonomy
        from matcher.matching.engine import MatchEngine
        from matcher.settings import Settings
        from matcher.store.db import init_db, make_engine
        from matcher.store.keys import ensure_tenant

        if encoder is None:
            from bench.digest_bench import HashingEncoder

            encoder = HashingEncoder()
        self._tmp = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="parkmatch-park-")
            data_dir = Path(self._tmp.name)
        self.today = date.today()
        t0 = time.perf_counter()
        res, ents, needs = generate(n_resources, n_needs, seed, self.today)
        self.resources = {r["id"]: r["_truth"] for r in res}
        settings = Settings(data_dir=data_dir, database_url=None)
        self.settings = settings
        self.db = make_engine(settings)
        init_db(self.db)
        now = datetime.now(UTC)
        with Session(self.db) as s:
            ensure_tenant(s, TENANT)
            s.commit()
            rows = [
                {k: v for k, v in r.items() if k != "_truth"}
                | {
                    "tenant_id": TENANT,
                    "language": "zh",
                    "status": "active",
                    "visibility": "public",
                    "created_at": now,
                    "updated_at": now - timedelta(days=(r["id"] * 7919) % 90),
                }
                for r in res
            ]
            for start in range(0, len(rows), 2000):
                s.execute(insert(Resource), rows[start : start + 2000])
            stamp = {"tenant_id": TENANT, "visibility": "public", "created_at": now, "updated_at": now}
            s.execute(
                insert(Enterprise),
                [
                    e
                    | stamp
                    | {
                        "email": f"e{e['id']}@example.com",
                        "digest_kinds": [],
                        "language": "zh",
                        "digest_frequency": "weekly",
                        "unsubscribed": False,
                    }
                    for e in ents
                ],
            )
            s.execute(
                insert(Need),
                [{k: v for k, v in n.items() if k != "_truth"} | stamp | {"status": "open"} for n in needs],
            )
            s.commit()
        # every need that has at least one true match in the park (the others cannot be scored)
        self.truth: dict[int, set[int]] = {}
        self.needs: dict[int, ParkNeed] = {}
        by_kind_ind: dict[tuple[str, str], list[ParkResource]] = {}
        for r in self.resources.values():
            by_kind_ind.setdefault((r.kind, r.industry), []).append(r)
        for n in needs:
            pn: ParkNeed = n["_truth"]
            hits = {
                r.id for r in by_kind_ind.get((pn.kind, pn.industry), []) if truly_matches(pn, r, self.today)
            }
            if hits:
                self.truth[pn.id] = hits
                self.needs[pn.id] = pn
        self.engine = MatchEngine(settings, self.db, default_taxonomy(), encoder, relevance=None)
        self.engine.start(background_save_s=0)
        self.build_s = round(time.perf_counter() - t0, 1)

    def close(self) -> None:
        self.engine.close()
        self.db.dispose()
        if self._tmp is not None:
            self._tmp.cleanup()

    def serve(self, need_id: int, *, k: int = 10) -> Any:
        """One match for a need through the production path, with the production defaults."""
        from matcher.matching.engine import MatchQuery

        return self.engine.match(MatchQuery(need_id=need_id, k=k, explain=False), tenant=TENANT)

    def ndcg(self, ranker: Any, need_ids: list[int], *, k: int = 10) -> float:
        """Mean nDCG@k of the lists `ranker` serves for these needs, against every true match in the park."""
        from training.evaluation.metrics import per_query

        before, trial = self.engine.ranker, self.engine.trial
        self.engine.ranker, self.engine.trial = ranker, None  # this ranker's own lists, never interleaved
        try:
            run = {str(n): [(str(c.id), c.score) for c in self.serve(n, k=k).candidates] for n in need_ids}
        finally:
            self.engine.ranker, self.engine.trial = before, trial
        qrels = {str(n): dict.fromkeys(map(str, self.truth[n]), 1) for n in need_ids}
        return round(float(np.mean(list(per_query(run, qrels, "ndcg", k).values()))), 4)


def simulate_park(
    park: Park,
    *,
    max_events: int = 500,
    every: int = 50,
    shown: int = 10,
    eta: float = 1.0,
    reject_prob: float = 0.3,
    seed: int = 0,
    trial: bool = True,
) -> dict[str, Any]:
    """Scripted users over the park; every `every` feedback events the product's own learning step runs
    (`training.rankers.promotion`, as `matcher train ranker` does, with interleaved trials unless `trial` is False);
    the curve is the served ranker's nDCG@10 on held-out needs."""
    from matcher.models.follower import install_active_ranker, install_trial
    from matcher.models.trial import evaluate_trial
    from matcher.outcomes.feedback import record_feedback
    from matcher.outcomes.impressions import log_impressions  # what the match route logs
    from matcher.store.keys import Caller
    from training.data.labels import from_feedback
    from training.evaluation.compare import NotEnoughData, grouped_split
    from training.rankers.promotion import train_and_decide
    from training.registry import TrainingRegistry as ModelRegistry

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    park.engine._trial_rng.seed(seed)
    pool, held = grouped_split([str(n) for n in park.needs], test_size=0.5, seed=seed)
    pool_ids, held_ids = [int(n) for n in pool], [int(n) for n in held]
    caller = Caller(tenant=TENANT, role="member")
    registry = ModelRegistry.for_settings(park.settings)
    install_active_ranker(park.engine, park.settings)
    curve = [
        {
            "events": 0,
            "sessions": 0,
            "serving": park.engine.ranker.version,
            "ndcg@10": park.ndcg(park.engine.ranker, held_ids),
            "candidate_ndcg@10": None,
            "ci95": None,
            "promoted": False,
            "reason": "cold start: transparent default",
        }
    ]
    events = sessions = accepted = rejected = interleaved = 0
    next_check = every
    while events < max_events:
        need = park.needs[pool_ids[int(rng.integers(len(pool_ids)))]]
        outcome = park.serve(need.id, k=shown)
        log_impressions(park.db, outcome, TENANT)
        sessions += 1
        interleaved += outcome.teams is not None
        with Session(park.db) as s:
            for pos, c in enumerate(outcome.candidates, start=1):
                if rng.random() >= pos ** (-eta):
                    continue  # not examined
                r = park.resources[c.id]
                if c.id in park.truth[need.id]:
                    action, reason = "accepted", None
                elif rng.random() < reject_prob:
                    action, reason = "rejected", reject_reason(need, r, park.today)
                else:
                    continue
                record_feedback(
                    s,
                    caller=caller,
                    request_id=outcome.request_id,
                    resource_id=c.id,
                    action=action,
                    reason=reason,
                    need_id=need.id,
                )
                events += 1
                accepted += action == "accepted"
                rejected += action == "rejected"
            s.commit()
        if events < next_check:
            continue
        next_check = (events // every + 1) * every
        point: dict[str, Any] = {"events": events, "sessions": sessions}
        serving_before = park.engine.ranker.version
        with Session(park.db) as s:
            verdict = evaluate_trial(
                s, registry, planned=park.settings.trial_votes
            )  # the running trial first, as `matcher train ranker` does
            log = from_feedback(s, tenant=TENANT)
        point["lists_with_feedback"] = log.n_groups
        if verdict is not None:
            point["trial"] = verdict.as_dict()
        try:
            decided = train_and_decide(
                registry, log, source={"simulated": "park"}, params={"eta": eta}, seed=seed, trial=trial
            )
        except NotEnoughData as exc:
            point |= {"candidate_ndcg@10": None, "ci95": None, "reason": str(exc).split(";")[0]}
        else:
            ev = decided["evaluation"]
            point |= {
                "candidate": decided["model"],
                "candidate_ndcg@10": park.ndcg(decided["ranker"], held_ids),
                "logged_comparison": {k: ev[k] for k in ("queries", "diff")},
                "ci95": ev["ci95"],
                "activated_offline": decided["activated"],
                "put_on_trial": decided["trial"],
                "reason": decided["note"] or "won its held-out comparison",
            }
        install_active_ranker(park.engine, park.settings)
        install_trial(park.engine, park.settings)
        point |= {
            "promoted": park.engine.ranker.version != serving_before,
            "serving": park.engine.ranker.version,
            "on_trial": None if park.engine.trial is None else park.engine.trial.ranker.version,
            "ndcg@10": park.ndcg(park.engine.ranker, held_ids),
        }
        curve.append(point)
    truth_sizes = [len(park.truth[n]) for n in park.needs]
    return {
        "scenario": "park (synthetic records, hidden rule in bench/park_sim.py)",
        "park": {
            "resources": len(park.resources),
            "resources_by_kind": {k: sum(1 for r in park.resources.values() if r.kind == k) for k in KINDS},
            "needs_with_a_true_match": len(park.needs),
            "true_matches_per_need_median": float(np.median(truth_sizes)),
            "encoder": getattr(park.engine.supply.encoder, "model_id", "?"),
            "build_s": park.build_s,
        },
        "needs": {"simulated": len(pool_ids), "held_out": len(held_ids)},
        "shown_per_session": shown,
        "eta": eta,
        "reject_prob": reject_prob,
        "seed": seed,
        "feedback": {
            "accepted": accepted,
            "rejected": rejected,
            "sessions": sessions,
            "interleaved_sessions": interleaved,
        },
        "trial_share": park.settings.trial_share if trial else 0.0,
        "curve": curve,
        "start_ndcg@10": curve[0]["ndcg@10"],
        "final_ndcg@10": curve[-1]["ndcg@10"],
        "final_serving": curve[-1]["serving"],
        "promotions": [p["events"] for p in curve if p.get("promoted")],
        "total_s": round(time.perf_counter() - t0, 1),
    }
