"""The demo data set: the project's own records (matcher/data/demo) and research results from the public CSL
corpus, loaded idempotently into one tenant, plus the default encoder trained when it is missing.

Everything added to a CSL record (holder, TRL, transfer modes, price, region) is synthetic and derived
deterministically from the record's id, so re-running the load changes nothing."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from embeddings.text import normalize
from matcher.domain.tables import Enterprise, Need, Resource
from matcher.domain.taxonomy import Taxonomy, default_taxonomy
from matcher.ingest.importer import ImportTotals, upsert_records
from matcher.settings import Settings
from matcher.store.keys import Caller, create_key, ensure_tenant, verify_key

logger = logging.getLogger(__name__)

DEMO_TENANT = "demo-park"
DEFAULT_RESULTS = 3000
KEY_FILE = "demo-admin.key"
CORPUS_PARTS = ("shared", "data", "research_results", "csl_corpus.jsonl")
RESOURCE_FILES = ("results", "scenarios", "funds", "incubators")

# ---------------------------------------------------------------------------------------------- the project's own


def own_records(name: str) -> list[dict[str, Any]]:
    """Records of one demo file (results, scenarios, funds, incubators, enterprises, needs)."""
    text = resources.files("matcher").joinpath(f"data/demo/{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def with_dates(record: Mapping[str, Any], today: date) -> dict[str, Any]:
    """Turn the relative dates of a demo record (deadline_in_days, valid_for_days) into dates from `today`,
    so that some scenarios always close within the next two weeks."""
    out = dict(record)
    deadline = out.pop("deadline_in_days", None)
    valid = out.pop("valid_for_days", None)
    if deadline is not None:
        when = (today + timedelta(days=int(deadline))).isoformat()
        if "kind" in out:
            out["details"] = {**out.get("details", {}), "deadline": when}
        else:
            out["deadline"] = when
    if valid is not None:
        out["valid_until"] = (today + timedelta(days=int(valid))).isoformat()
    return out


# ---------------------------------------------------------------------------------------------- the CSL corpus


def find_corpus(explicit: str | Path | None = None) -> Path | None:
    """The CSL corpus: an explicit path (even a missing one, which means "none"), else
    <repo>/../shared/data/research_results/csl_corpus.jsonl, else the same beside the working directory."""
    if explicit is not None and str(explicit) != "":
        path = Path(explicit).expanduser()
        return path if path.is_file() else None
    repo = Path(__file__).resolve().parents[1]
    for base in (repo.parent, Path.cwd().parent, Path.cwd()):
        candidate = base.joinpath(*CORPUS_PARTS)
        if candidate.is_file():
            return candidate
    return None


def read_corpus(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# discipline (CSL) -> taxonomy tags, where a sensible mapping exists
DISCIPLINE_TAGS: dict[str, tuple[str, ...]] = {
    "计算机科学与技术": ("software",),
    "信息与通信工程": ("6g",),
    "电子科学与技术": ("integrated-circuits",),
    "光学工程": ("optoelectronics",),
    "控制科学与工程": ("intelligent-equipment",),
    "机械工程": ("intelligent-equipment",),
    "兵器科学与技术": ("intelligent-equipment",),
    "材料科学与工程": ("new-materials",),
    "化学/化学工程与技术": ("new-materials",),
    "冶金工程": ("new-materials",),
    "纺织科学与工程": ("new-materials",),
    "电气工程": ("smart-grid",),
    "动力工程及工程热物理": ("green-energy",),
    "核科学与技术": ("green-energy",),
    "石油与天然气工程": ("green-energy",),
    "环境科学与工程": ("low-carbon",),
    "交通运输工程": ("transportation",),
    "船舶与海洋工程": ("transportation",),
    "航空宇航科学与技术": ("aerospace",),
    "天文学": ("aerospace",),
    "土木工程": ("construction",),
    "建筑学": ("construction",),
    "水利工程": ("construction",),
    "基础医学/临床医学": ("healthcare",),
    "药学": ("innovative-drugs",),
    "中医学/中药学": ("innovative-drugs",),
    "口腔医学": ("medical-devices",),
    "公共卫生与预防医学": ("healthcare",),
    "生物学/生物科学与工程": ("healthcare",),
    "食品科学与工程": ("modern-agriculture",),
    "园艺学": ("modern-agriculture",),
    "作物学": ("modern-agriculture",),
    "水产": ("modern-agriculture",),
    "畜牧学/兽医学": ("modern-agriculture",),
    "农业工程": ("modern-agriculture",),
    "农业资源利用": ("modern-agriculture",),
    "植物保护": ("modern-agriculture",),
    "林学/林业工程": ("modern-agriculture",),
}
# fictional holders by category (the corpus names no institution)
_HOLDERS: dict[str, tuple[str, ...]] = {
    "工学": ("京华理工大学", "北辰工业大学", "远山科技大学", "东岳工程技术研究院"),
    "理学": ("北辰大学", "京华理工大学", "中原基础科学研究院"),
    "医学": ("北辰医科大学", "京南医学院", "东岳临床医学研究所"),
    "农学": ("京郊农业大学", "北方农林科学院"),
    "": ("北辰大学", "京华理工大学", "远山科技大学", "京华师范大学"),
}
_TRL_RANGE = {"工学": (3, 7), "理学": (2, 4), "医学": (2, 6), "农学": (3, 7)}
_IP_STATUS = ("已授权发明专利", "发明专利申请中", "论文成果，未申请专利", "技术秘密")
_MODES = ("transfer", "license", "equity", "co-development")
_PRICES = (None, 500_000, 1_000_000, 2_000_000, 3_000_000, 5_000_000, 8_000_000, 10_000_000, 20_000_000)
_REGIONS = ("北京",) * 6 + ("天津", "上海", "南京", "武汉", "西安", "成都", "广州", "合肥")
_TECH_CATEGORIES = {"工学", "理学", "医学", "农学"}
_TAG_RE = re.compile(r"<[^>]+>")
_CLAIM = re.compile(
    r"(?:提出|设计|研制|开发|建立|构建|给出|实现)了?(一种|一套|一个)?"
    r"([^,，.。;；:：()（）]{4,50}(?:方法|模型|系统|算法|装置|技术|工艺|策略|框架|方案|材料|设备|平台|传感器|电路|芯片))"
)
_TOPIC = re.compile(
    r"(?:^|[,，;；:：]|为了?|目的[:：]?)\s*(?:探讨|研究|分析|考察|评价|比较|观察)了?([^,，.。;；:：]{6,36})"
)
_VERB = re.compile(r"^(?:提出|设计|研制|开发|建立|构建|给出|实现)了?")
_LEAD = re.compile(r"^(?:本文|文章|该文)?(?:综述|介绍|论述|阐述|总结|概述|回顾)了?")
_FILLER = (
    "随着",
    "近年来",
    "目前",
    "本文",
    "文章",
    "为了",
    "为",
    "自",
    "在",
    "通过",
    "对",
    "由于",
    "因为",
    "结果",
)


def _h(record_id: str, salt: str) -> int:
    return int(hashlib.sha1(f"{salt}:{record_id}".encode()).hexdigest()[:12], 16)


def clean_abstract(text: str) -> str:
    return re.sub(r"\s+", " ", _TAG_RE.sub(" ", text or "").replace("\u3000", " ")).strip()


def corpus_title(record: Mapping[str, Any]) -> str:
    """The record's title, or one made from the abstract: its claim ("提出了一种…方法"), its topic
    ("探讨了…"), its keywords, or its first informative clause."""
    title = (record.get("title") or "").strip()
    if title:
        return title[:300]
    abstract = clean_abstract(record.get("abstract") or "")
    sentences = [x for x in re.split(r"[。.!?！？]", abstract) if x.strip()][:2]
    head = "。".join(sentences)
    m = _CLAIM.search(head)
    if m:
        return ((m.group(1) or "") + m.group(2)).strip()[:60]
    m = _TOPIC.search(head)
    if m and "提出" not in m.group(1) and "看法" not in m.group(1):
        topic = m.group(1).strip().removesuffix("的")
        return (topic if topic.endswith("研究") else topic + "研究")[:60]
    keywords = [k for k in record.get("keywords") or [] if k]
    if keywords:
        return "、".join(keywords[:3]) + "相关研究成果"
    clauses = [c.strip() for c in re.split(r"[,，;；:：]", sentences[0] if sentences else "") if c.strip()]
    while len(clauses) > 1 and clauses[0].startswith(_FILLER + ("针对",)):
        clauses.pop(0)  # "针对…问题," "随着…," say why, not what
    whole = _LEAD.sub("", _VERB.sub("", "，".join(clauses)))
    if 8 <= len(whole) <= 50:
        return whole
    for clause in clauses:
        clause = _LEAD.sub("", _VERB.sub("", clause))
        if 8 <= len(clause) <= 40:
            return clause
    first = clauses[0] if clauses else str(record.get("id"))
    return (first[:40] + "…") if len(first) > 40 else first


class TagFinder:
    """Taxonomy tags named in a text, with one regular expression for all names (the corpus has 14k records)."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        names: dict[str, str] = {}
        for tag in taxonomy.tags.values():
            for name in (tag.zh, tag.en, *tag.aliases):
                key = normalize(name)
                if len(key) >= 2:
                    names.setdefault(key, tag.id)
        self._tags = names
        alternation = "|".join(re.escape(k) for k in sorted(names, key=len, reverse=True))
        # latin names match whole words only ('ai' is not in 'said'); Chinese names match anywhere
        self._pattern = re.compile(rf"(?<![a-z0-9])(?:{alternation})(?![a-z0-9])|(?:{alternation})")

    def __call__(self, text: str) -> list[str]:
        found: list[str] = []
        for m in self._pattern.finditer(normalize(text)):
            key = m.group(0)
            if key.isascii() and not _whole_word(m):
                continue
            tag = self._tags.get(key)
            if tag is not None and tag not in found:
                found.append(tag)
        return found


def _whole_word(m: re.Match[str]) -> bool:
    s, start, end = m.string, m.start(), m.end()
    before = s[start - 1] if start else " "
    after = s[end] if end < len(s) else " "
    return not (before.isascii() and before.isalnum()) and not (after.isascii() and after.isalnum())


def corpus_industries(record: Mapping[str, Any], find_tags: Callable[[str], list[str]]) -> list[str]:
    tags = list(DISCIPLINE_TAGS.get(record.get("discipline") or "", ()))
    text = " ".join([record.get("title") or "", " ".join(record.get("keywords") or [])])
    for tag in find_tags(text):
        if tag not in tags:
            tags.append(tag)
    return tags[:3]


def corpus_result(record: Mapping[str, Any], find_tags: Callable[[str], list[str]]) -> dict[str, Any]:
    """A CSL record as a `result` resource; the details are synthetic, derived from the record id."""
    rid = str(record["id"])
    category = record.get("category") or ""
    holders = _HOLDERS.get(category, _HOLDERS[""])
    holder = holders[_h(rid, "holder") % len(holders)]
    discipline = (record.get("discipline") or "").split("/")[0]
    if discipline:
        holder += f"{discipline}学院" if holder.endswith("大学") else f"{discipline}研究室"
    lo, hi = _TRL_RANGE.get(category, (2, 6))
    modes_mask = _h(rid, "modes") % 15 + 1  # a non-empty subset of the four modes
    details: dict[str, Any] = {
        "holder": holder,
        "trl": lo + _h(rid, "trl") % (hi - lo + 1),
        "ip_status": _IP_STATUS[_h(rid, "ip") % len(_IP_STATUS)],
        "transfer_modes": [m for i, m in enumerate(_MODES) if modes_mask >> i & 1],
    }
    price = _PRICES[_h(rid, "price") % len(_PRICES)]
    if price is not None:
        details["price"] = price
    return {
        "kind": "result",
        "external_id": rid,
        "title": corpus_title(record),
        "description": clean_abstract(record.get("abstract") or "")[:20_000],
        "industries": corpus_industries(record, find_tags),
        "region": _REGIONS[_h(rid, "region") % len(_REGIONS)],
        "language": "zh",
        "details": details,
    }


def corpus_results(
    records: Iterable[Mapping[str, Any]], limit: int, taxonomy: Taxonomy
) -> list[dict[str, Any]]:
    """`limit` results (0 = all): records of the technical categories first, in a fixed pseudo-random order."""
    find_tags = TagFinder(taxonomy)
    usable = [r for r in records if r.get("id") and (r.get("abstract") or r.get("title"))]

    def rank(r: Mapping[str, Any]) -> tuple[int, int, int]:
        mapped = (r.get("discipline") or "") in DISCIPLINE_TAGS
        technical = r.get("category") in _TECH_CATEGORIES
        return (0 if mapped else 1, 0 if technical else 1, _h(str(r["id"]), "order"))

    usable.sort(key=rank)
    chosen = usable if limit <= 0 else usable[:limit]
    return [corpus_result(r, find_tags) for r in chosen]


# ---------------------------------------------------------------------------------------------- loading


@dataclass
class DemoSummary:
    tenant: str
    resources: dict[str, ImportTotals] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    corpus: Path | None = None
    corpus_results: int = 0
    enterprises: dict[str, int] = field(default_factory=dict)
    needs: dict[str, int] = field(default_factory=dict)


def _count(counts: dict[str, int], status: str) -> None:
    counts[status] = counts.get(status, 0) + 1


def load_demo(
    engine: Engine,
    *,
    tenant: str = DEMO_TENANT,
    results: int = DEFAULT_RESULTS,
    corpus: Path | None = None,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Load (or refresh) the demo records into `tenant`; upserts by external_id, so re-running never duplicates."""
    today = today or date.today()
    taxonomy = default_taxonomy()
    summary = DemoSummary(tenant=tenant, corpus=corpus)
    with Session(engine, expire_on_commit=False) as session:
        ensure_tenant(session, tenant, "Demo park")
        session.commit()
        for name in RESOURCE_FILES:
            records = [with_dates(r, today) for r in own_records(name)]
            if name == "results" and corpus is not None:
                extra = corpus_results(read_corpus(corpus), results, taxonomy)
                summary.corpus_results = len(extra)
                records += extra
            report = upsert_records(session, tenant=tenant, records=records, progress=progress)
            summary.resources[name] = report.totals
            summary.rejected += [
                f"{name} {r.external_id}: {r.reason}" for r in report.rows if r.status == "rejected"
            ]
        enterprise_ids = _load_enterprises(session, tenant, own_records("enterprises"), summary)
        _load_needs(
            session, tenant, [with_dates(r, today) for r in own_records("needs")], enterprise_ids, summary
        )
    return summary


def _load_enterprises(
    session: Session, tenant: str, records: list[dict], summary: DemoSummary
) -> dict[str, int]:
    from matcher.domain.schemas import EnterpriseCreate, EnterpriseUpdate
    from matcher.store import repo

    caller = Caller(tenant=tenant, role="admin")
    existing = {
        e.external_id: e
        for e in session.exec(
            select(Enterprise).where(Enterprise.tenant_id == tenant, Enterprise.external_id.is_not(None))  # type: ignore[union-attr]
        )
    }
    ids: dict[str, int] = {}
    for record in records:
        row = existing.get(record["external_id"])
        if row is None:
            row = repo.create_enterprise(
                session, caller=caller, data=EnterpriseCreate(**record), commit=False
            )
            _count(summary.enterprises, "created")
        else:
            before = row.updated_at
            data = EnterpriseUpdate(**{k: v for k, v in record.items()})
            row = repo.update_enterprise(session, caller=caller, id=row.id, data=data, commit=False)
            _count(summary.enterprises, "updated" if row.updated_at != before else "unchanged")
        ids[record["external_id"]] = row.id
    session.commit()
    return ids


def _load_needs(
    session: Session, tenant: str, records: list[dict], enterprise_ids: dict[str, int], summary: DemoSummary
) -> None:
    """Needs have no external id: (enterprise, title) identifies a demo need."""
    from matcher.domain.schemas import NeedCreate, NeedUpdate
    from matcher.store import repo

    caller = Caller(tenant=tenant, role="admin")
    existing = {
        (n.enterprise_id, n.title): n for n in session.exec(select(Need).where(Need.tenant_id == tenant))
    }
    for record in records:
        fields = {k: v for k, v in record.items() if k != "enterprise"}
        enterprise_id = enterprise_ids[record["enterprise"]]
        row = existing.get((enterprise_id, fields["title"]))
        if row is None:
            repo.create_need(
                session, caller=caller, data=NeedCreate(enterprise_id=enterprise_id, **fields), commit=False
            )
            _count(summary.needs, "created")
        else:
            before = row.updated_at
            row = repo.update_need(session, caller=caller, id=row.id, data=NeedUpdate(**fields), commit=False)
            _count(summary.needs, "updated" if row.updated_at != before else "unchanged")
    session.commit()


# ---------------------------------------------------------------------------------------------- API key


def demo_admin_key(engine: Engine, settings: Settings, tenant: str = DEMO_TENANT) -> str:
    """The demo tenant's admin key: the one saved in data_dir/demo-admin.key while it still works, else a new one
    (saved there, owner-readable only). Only its hash is in the store."""
    path = settings.data_dir / KEY_FILE
    with Session(engine) as session:
        if path.is_file():
            saved = path.read_text(encoding="utf-8").strip()
            caller = verify_key(session, saved)
            if caller is not None and caller.tenant == tenant and caller.role == "admin":
                return saved
        _row, plaintext = create_key(session, tenant=tenant, role="admin", name="demo")
        session.commit()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(plaintext + "\n", encoding="utf-8")
    path.chmod(0o600)
    return plaintext


# ---------------------------------------------------------------------------------------------- default encoder


def encoder_present(directory: Path) -> bool:
    return (directory / "modules.json").is_file() or (directory / "training_manifest.json").is_file()


def training_records(engine: Engine, corpus: Path | None) -> Iterator[dict[str, Any]]:
    """Texts to train the default encoder on: the CSL corpus (when present) and every stored resource.

    A generator, so nothing is read when the encoder is already there."""
    seen: set[str] = set()
    if corpus is not None:
        for r in read_corpus(corpus):
            seen.add(str(r["id"]))
            yield {
                "id": r["id"],
                "title": r.get("title") or "",
                "text": r.get("abstract") or "",
                "keywords": r.get("keywords") or [],
            }
    taxonomy = default_taxonomy()
    with Session(engine) as session:
        rows = session.exec(select(Resource)).all()
    for res in rows:
        if res.external_id in seen:
            continue
        yield {
            "id": f"resource-{res.id}",
            "title": res.title,
            "text": res.description,
            "keywords": [taxonomy.label(t, res.language) for t in res.industries],
        }


def ensure_default_encoder(
    settings: Settings,
    records: Iterable[Mapping[str, Any]],
    *,
    retrain: bool = False,
    show_progress: bool = True,
) -> Path | None:
    """Train the default encoder into settings.default_encoder_dir unless one is there (or `retrain`).

    Trains into a sibling directory and swaps it in, so a crash never leaves a half-written model where the
    service looks for it. Returns the directory, or None when the training code is not installed."""
    target = settings.default_encoder_dir
    if encoder_present(target) and not retrain:
        logger.info("default encoder present at %s", target)
        return target
    try:
        from training.encoders.static import train_static_encoder
    except ImportError as exc:
        logger.warning("cannot train the default encoder (%s); matching needs MATCHER_ENCODER set", exc)
        return None
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    train_static_encoder(list(records), building, show_progress=show_progress)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    building.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target
