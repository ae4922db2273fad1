"""Compose digests for many enterprises against many resources with the match engine; print time and peak RSS.

Synthetic but realistic bilingual records (park industries, kinds, providers, deadlines, open needs). Query
encoding is batched (`encoder.encode_queries` for every enterprise at once, through EngineSource.prepare) and
the engine's own retrieval and ranking are reused. Nothing is sent or recorded.

Usage::

    python -m bench.digest_bench                                   # 10,000 enterprises x 100,000 resources
    python -m bench.digest_bench --enterprises 1000 --resources 10000
    python -m bench.digest_bench --encoder hashing                 # no trained model at hand

--encoder: 'configured' (MATCHER_ENCODER, the project default), a model path or name, or 'hashing' (a
feature-hashing stand-in with the same interface, for machines without a model)."""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
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
PROVIDERS = [f"{p}{i}" for p in ("清华大学", "中科院", "北京大学", "园区基金", "创新工场", "某汽车厂") for i in range(40)]


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

    def encode_documents(self, texts, *, batch_size: int = 64, show_progress: bool = False, **_: object) -> np.ndarray:
        return self._encode(texts)


def populate(db, n_ent: int, n_res: int, seed: int) -> None:
    from sqlmodel import Session

    from matcher.models import Enterprise, Need, Resource, Tenant

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
            batch.append(Resource(
                tenant_id="park", kind=kind, title=f"{zh}{a}{['成果', '场景', '基金', '孵化'][KINDS.index(kind)]} {i}",
                description=f"面向{zh}领域的{a}与{b}，{en} {a} {b} 项目编号 {i}", industries=[],
                provider=rng.choice(PROVIDERS), details=details,
                updated_at=now - timedelta(days=rng.randint(0, 60)),
            ))
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
            ents.append(Enterprise(
                tenant_id="park", name=f"{zh}企业{i}", description=f"专注{zh}，{'、'.join(rng.sample(terms, 2))}",
                email=f"e{i}@example.com", language=rng.choice(("zh", "en")),
            ))
        s.add_all(ents)
        s.commit()
        needs = []
        for e in ents:
            if rng.random() < 0.6:
                zh, en, terms = INDUSTRIES[rng.choice(keys)]
                needs.append(Need(tenant_id="park", enterprise_id=e.id, title=f"寻求{rng.choice(terms)}合作",
                                  description=f"{zh} {rng.choice(terms)} 需求"))
        s.add_all(needs)
        s.commit()


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kb / 1024 if sys.platform != "darwin" else kb / 1024 / 1024, 1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--enterprises", type=int, default=10_000)
    ap.add_argument("--resources", type=int, default=100_000)
    ap.add_argument("--encoder", default="configured")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--work-dir", type=Path, default=None)
    args = ap.parse_args(argv)

    from sqlmodel import Session, select

    from matcher.db import init_db, make_engine
    from matcher.digest.compose import DigestComposer, period_of
    from matcher.digest.sources import EngineSource
    from matcher.encoding import load_configured_encoder
    from matcher.engine import MatchEngine
    from matcher.models import Enterprise
    from matcher.settings import Settings
    from matcher.taxonomy import default_taxonomy

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="digest-bench-"))
    settings = Settings(data_dir=work, **({} if args.encoder in ("configured", "hashing") else {"encoder": args.encoder}))
    encoder = HashingEncoder() if args.encoder == "hashing" else load_configured_encoder(settings)
    db = make_engine(settings)
    init_db(db)
    t0 = time.perf_counter()
    populate(db, args.enterprises, args.resources, args.seed)
    t1 = time.perf_counter()
    engine = MatchEngine(settings, db, default_taxonomy(), encoder)
    engine.save = lambda: None  # a throwaway store: the indexes need not be persisted
    engine.start(background_save_s=0)
    t2 = time.perf_counter()
    composer = DigestComposer(EngineSource(engine), public_url=settings.public_url)
    with Session(db) as session:
        enterprises = list(session.exec(select(Enterprise)))
        t3 = time.perf_counter()
        digests = {}
        for i in range(0, len(enterprises), 1000):
            digests.update(composer.compose_many(session, enterprises[i : i + 1000], period_of(date.today())))
    t4 = time.perf_counter()
    sizes = [len(d.items) for d in digests.values()]
    print(json.dumps({
        "enterprises": args.enterprises,
        "resources": args.resources,
        "encoder": encoder.model_id,
        "populate_s": round(t1 - t0, 1),
        "index_s": round(t2 - t1, 1),
        "compose_s": round(t4 - t3, 1),
        "per_enterprise_ms": round((t4 - t3) * 1000 / max(1, len(enterprises)), 2),
        "digests_with_items": sum(1 for n in sizes if n),
        "mean_items": round(float(np.mean(sizes)) if sizes else 0.0, 2),
        "peak_rss_mb": peak_rss_mb(),
    }))


if __name__ == "__main__":
    main()
