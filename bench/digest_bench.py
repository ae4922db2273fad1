"""Compose digests for many enterprises against many resources with the match engine; print time and peak RSS.

Synthetic but realistic bilingual records (park industries, kinds, providers, deadlines, open needs). Query
encoding is batched (`encoder.encode_queries` for every enterprise at once, through EngineSource.prepare) and
the engine's own retrieval and ranking are reused. Nothing is sent or recorded.

Usage::

    python -m bench.digest_bench                                   # 10,000 enterprises x 100,000 resources
    python -m bench.digest_bench --enterprises 1000 --resources 10000
    python -m bench.digest_bench --encoder hashing                 # a stand-in, for quick smoke runs only

--encoder:

* 'configured' (the default): what the service would load. MATCHER_ENCODER when it names a path or model;
  otherwise the project's default static model in the configured data dir (`<MATCHER_DATA_DIR>/models/
  encoder-default`); when there is none, a model of that same type is trained here with the project's trainer
  and default recipe (`training.encoders.static.train_static_encoder`, as `matcher demo` does) on a sample of the
  synthetic records (`--train-records`), into the work dir, and loaded the way the service loads it;
* a model path or name;
* 'hashing': a feature-hashing stand-in with the Encoder interface (not the production model).

Phases reported: `train_s` (only when a model was trained here), `populate_s` (writing the synthetic store),
`index_s` (`MatchEngine.start`: the 100k resource documents encoded, dense and BM25 indexes built),
`encode_s` (the batched query encoding, `EngineSource.prepare`), `compose_s` (retrieval, ranking, explanation
and selection for every enterprise, without the encoding), `total_compose_s` (encode + compose: the digest
run's share once the engine is up) and its process CPU time `total_compose_cpu_s`; `load_avg_1m` is the
machine's load before and after composing (other work on the same cores slows the wall-clock figures)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

INDUSTRIES = {
    "robotics": ("工业机器人", "industrial robot", ["机械臂", "视觉检测", "运动控制", "自动化产线"]),
    "battery": ("储能电池", "battery storage", ["固态电池", "热管理", "电芯", "储能系统"]),
    "biomed": ("生物医药", "biomedicine", ["抗体药物", "基因检测", "医疗器械", "细胞治疗"]),
    "semis": ("集成电路", "semiconductors", ["芯片设计", "封装测试", "光刻", "功率器件"]),
    "ai": ("人工智能", "artificial intelligence", ["大模型", "计算机视觉", "语音识别", "知识图谱"]),
    "materials": ("新材料", "advanced materials", ["碳纤维", "石墨烯", "陶瓷材料", "复合材料"]),
}
KINDS = ("result", "scenario", "fund", "incubator")
PROVIDERS = [
    f"{p}{i}"
    for p in ("清华大学", "中科院", "北京大学", "园区基金", "创新工场", "某汽车厂")
    for i in range(40)
]


class HashingEncoder:
    """Feature hashing of tokens into 256 dims, L2-normalised: the Encoder interface without a model."""

    model_id = "hashing-256"
    dimension = 256

    def _encode(self, texts, batch_size: int = 64) -> np.ndarray:
        from embeddings.text import tokenize

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for tok in tokenize(text):
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dimension] += 1.0 if h & 1 << 31 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)

    def encode_queries(self, texts, *, batch_size: int = 64) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(
        self, texts, *, batch_size: int = 64, show_progress: bool = False, **_: object
    ) -> np.ndarray:
        return self._encode(texts)


def populate(db, n_ent: int, n_res: int, seed: int) -> None:
    from sqlmodel import Session

    from matcher.domain.tables import Enterprise, Need, Resource, Tenant

    rng = random.Random(seed)
    now = datetime.now(UTC)
    keys = list(INDUSTRIES)
    with Session(db) as s:
        s.add(Tenant(id="park"))
        s.commit()
        batch = []
        for i in range(n_res):
            ind = rng.choice(keys)
            zh, en, terms = INDUSTRIES[ind]
            kind = rng.choice(KINDS)
            a, b = rng.sample(terms, 2)
            details = {}
            if kind == "scenario":
                details["deadline"] = (now.date() + timedelta(days=rng.randint(1, 120))).isoformat()
            batch.append(
                Resource(
                    tenant_id="park",
                    kind=kind,
                    title=f"{zh}{a}{['成果', '场景', '基金', '孵化'][KINDS.index(kind)]} {i}",
                    description=f"面向{zh}领域的{a}与{b}，{en} {a} {b} 项目编号 {i}",
                    industries=[],
                    provider=rng.choice(PROVIDERS),
                    details=details,
                    updated_at=now - timedelta(days=rng.randint(0, 60)),
                )
            )
            if len(batch) >= 5000:
                s.add_all(batch)
                s.commit()
                batch = []
        s.add_all(batch)
        s.commit()
        ents = []
        for i in range(n_ent):
            ind = rng.choice(keys)
            zh, en, terms = INDUSTRIES[ind]
            ents.append(
                Enterprise(
                    tenant_id="park",
                    name=f"{zh}企业{i}",
                    description=f"专注{zh}，{'、'.join(rng.sample(terms, 2))}",
                    email=f"e{i}@example.com",
                    language=rng.choice(("zh", "en")),
                )
            )
        s.add_all(ents)
        s.commit()
        needs = []
        for e in ents:
            if rng.random() < 0.6:
                zh, en, terms = INDUSTRIES[rng.choice(keys)]
                needs.append(
                    Need(
                        tenant_id="park",
                        enterprise_id=e.id,
                        title=f"寻求{rng.choice(terms)}合作",
                        description=f"{zh} {rng.choice(terms)} 需求",
                    )
                )
        s.add_all(needs)
        s.commit()


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024, 1)


class TimedSource:
    """Delegates to a candidate source and adds up the time spent in `prepare` (encoding) and `suggest`."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.prepare_s = 0.0
        self.suggest_s = 0.0
        self.queries = 0

    def prepare(self, queries) -> None:
        t = time.perf_counter()
        self.inner.prepare(queries)
        self.prepare_s += time.perf_counter() - t

    def suggest(self, query):
        t = time.perf_counter()
        try:
            return self.inner.suggest(query)
        finally:
            self.suggest_s += time.perf_counter() - t
            self.queries += 1


def training_records(db, limit: int, seed: int) -> list[dict]:
    """A sample of the synthetic resources, enterprises and needs as training records for the static model."""
    from sqlmodel import Session, select

    from matcher.domain.tables import Enterprise, Need, Resource

    rng = random.Random(seed)
    with Session(db) as s:
        rows = [(f"r{r.id}", r.title, r.description) for r in s.exec(select(Resource))]
        rows += [(f"e{e.id}", e.name, e.description) for e in s.exec(select(Enterprise))]
        rows += [(f"n{n.id}", n.title, n.description) for n in s.exec(select(Need))]
    if len(rows) > limit:
        rows = rng.sample(rows, limit)
    return [{"id": i, "title": t or "", "text": d or "", "keywords": []} for i, t, d in rows]


def resolve_encoder(args, work: Path, db):
    """(encoder, label, seconds spent training): see the module docstring for what --encoder means."""
    from matcher.models.encoder import load_configured_encoder
    from matcher.settings import Settings

    if args.encoder == "hashing":
        return HashingEncoder(), "hashing stand-in", 0.0
    if args.encoder != "configured":
        return (
            load_configured_encoder(Settings(data_dir=work, encoder=args.encoder)),
            f"given: {args.encoder}",
            0.0,
        )
    configured = Settings()  # the environment's MATCHER_ENCODER and MATCHER_DATA_DIR
    if configured.encoder != "default":
        return load_configured_encoder(configured), f"MATCHER_ENCODER={configured.encoder}", 0.0
    if configured.default_encoder_dir.exists():
        return load_configured_encoder(configured), f"default model at {configured.default_encoder_dir}", 0.0
    from training.encoders.static import train_static_encoder

    local = Settings(data_dir=work, encoder="default")
    if not local.default_encoder_dir.exists():
        t = time.perf_counter()
        records = training_records(db, args.train_records, args.seed)
        train_static_encoder(
            records, local.default_encoder_dir, show_progress=False, epochs=args.train_epochs
        )
        trained = time.perf_counter() - t
        label = f"default static model trained here on {len(records)} synthetic records"
    else:
        trained, label = 0.0, f"default static model at {local.default_encoder_dir}"
    return load_configured_encoder(local), label, trained


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=10_000)
    ap.add_argument("--resources", type=int, default=100_000)
    ap.add_argument(
        "--encoder", default="configured", help="configured (default) | a model path or name | hashing"
    )
    ap.add_argument(
        "--train-records", type=int, default=20_000, help="records sampled to train a default model"
    )
    ap.add_argument(
        "--train-epochs", type=int, default=None, help="epochs when training (default: the recipe's)"
    )
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work-dir", type=Path, default=None)
    ap.add_argument("--profile", type=Path, default=None, help="write a cProfile of the composition here")
    args = ap.parse_args(argv)
    scratch = args.work_dir is None
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="digest-bench-"))
    try:
        run(args, work)
    finally:
        if scratch:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> None:
    from sqlmodel import Session, func, select

    from matcher.digests.compose import DigestComposer, period_of
    from matcher.digests.sources import EngineSource
    from matcher.domain.tables import Enterprise, Need
    from matcher.domain.taxonomy import default_taxonomy
    from matcher.matching.engine import MatchEngine
    from matcher.settings import Settings
    from matcher.store.db import init_db, make_engine

    shutil.rmtree(
        work / "store", ignore_errors=True
    )  # the synthetic store is rebuilt; a model trained here is kept
    settings = Settings(data_dir=work / "store", encoder="default")
    db = make_engine(settings)
    init_db(db)
    t0 = time.perf_counter()
    populate(db, args.enterprises, args.resources, args.seed)
    populate_s = time.perf_counter() - t0
    encoder, encoder_label, train_s = resolve_encoder(args, work, db)
    t1 = time.perf_counter()
    engine = MatchEngine(settings, db, default_taxonomy(), encoder)
    engine.save = lambda: None  # a throwaway store: the indexes need not be persisted
    engine.start(background_save_s=0)
    t2 = time.perf_counter()
    source = TimedSource(EngineSource(engine))
    composer = DigestComposer(source, public_url=settings.public_url)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    with Session(db) as session:
        enterprises = list(session.exec(select(Enterprise).order_by(Enterprise.id)))
        n_needs = session.exec(select(func.count()).select_from(Need)).one()
        load_before = os.getloadavg()[0]
        t3, c3 = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        digests = {}
        period = period_of(date.today())
        for i in range(0, len(enterprises), 1000):  # the runner's chunk
            digests.update(composer.compose_many(session, enterprises[i : i + 1000], period))
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
    t4, c4 = time.perf_counter(), time.process_time()
    sizes = [len(d.items) for d in digests.values()]
    total = t4 - t3
    print(
        json.dumps(
            {
                "enterprises": args.enterprises,
                "resources": args.resources,
                "needs": n_needs,
                "queries": source.queries,
                "encoder": encoder.model_id,
                "encoder_source": encoder_label,
                "encoder_dim": encoder.dimension,
                "dense_index": engine.supply.dense.current_kind,
                "train_s": round(train_s, 1),
                "populate_s": round(populate_s, 1),
                "index_s": round(t2 - t1, 1),
                "encode_s": round(source.prepare_s, 1),
                "compose_s": round(total - source.prepare_s, 1),
                "total_compose_s": round(total, 1),
                "total_compose_cpu_s": round(c4 - c3, 1),
                "digests_per_s": round(len(digests) / total, 1) if total else None,
                "per_enterprise_ms": round(total * 1000 / max(1, len(enterprises)), 2),
                "per_query_ms": round(source.suggest_s * 1000 / max(1, source.queries), 2),
                "digests": len(digests),
                "digests_with_items": sum(1 for n in sizes if n),
                "mean_items": round(float(np.mean(sizes)) if sizes else 0.0, 2),
                "peak_rss_mb": peak_rss_mb(),
                "cpus": os.cpu_count(),
                "load_avg_1m": [
                    round(load_before, 2),
                    round(os.getloadavg()[0], 2),
                ],  # before / after composing
            }
        )
    )


if __name__ == "__main__":
    main()
