"""`matcher demo`: the project's own records load without the shared data, idempotently, for every kind; CSL
records map to results deterministically; the shipped default encoder is built only when missing."""

from __future__ import annotations

import json
import sys
import types
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlmodel import Session, select

from matcher.cli.main import main
from matcher.demo import dataset as demo
from matcher.domain.tables import Enterprise, Need, Resource
from matcher.domain.taxonomy import default_taxonomy
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine
from matcher.store.keys import verify_key


@pytest.fixture
def env(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MATCHER_DEMO_CORPUS", str(tmp_path / "no-such-corpus.jsonl"))
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    return Settings()


def run_demo(capsys, *args: str) -> list[str]:
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--results", "0", "--skip-encoder", *args])
    assert exc.value.code == 0, capsys.readouterr().err
    return capsys.readouterr().out.strip().splitlines()


def counts(settings: Settings) -> tuple[Counter, int, int]:
    engine = make_engine(settings)
    init_db(engine)
    with Session(engine) as s:
        kinds = Counter(r.kind for r in s.exec(select(Resource).where(Resource.tenant_id == "demo-park")))
        enterprises = len(s.exec(select(Enterprise)).all())
        needs = len(s.exec(select(Need)).all())
    engine.dispose()
    return kinds, enterprises, needs


def test_demo_without_shared_data_loads_every_kind_idempotently(env, capsys):
    out = run_demo(capsys)
    own = {name: len(demo.own_records(name)) for name in (*demo.RESOURCE_FILES, "enterprises", "needs")}
    kinds, enterprises, needs = counts(env)
    assert kinds == {
        "result": own["results"],
        "scenario": own["scenarios"],
        "fund": own["funds"],
        "incubator": own["incubators"],
    }
    assert own["scenarios"] >= 40 and own["funds"] >= 20 and own["incubators"] >= 20 and own["results"] >= 30
    assert enterprises == own["enterprises"] >= 40 and needs == own["needs"] >= 60
    assert f"results: {own['results']} ({own['results']} created, 0 updated, 0 unchanged)" in out
    key = out[-1]
    engine = make_engine(env)
    with Session(engine) as s:
        caller = verify_key(s, key)
    assert caller is not None and caller.tenant == "demo-park" and caller.role == "admin"

    again = run_demo(capsys)
    assert counts(env) == (kinds, enterprises, needs)
    assert f"scenarios: {own['scenarios']} (0 created, 0 updated, {own['scenarios']} unchanged)" in again
    assert f"needs: {own['needs']} ({own['needs']} unchanged)" in again
    assert again[-1] == key  # the saved key is reused while it works
    engine.dispose()


def test_scenario_deadlines_follow_the_load_date(env):
    today = date(2031, 3, 1)
    engine = make_engine(env)
    init_db(engine)
    demo.load_demo(engine, corpus=None, today=today)
    with Session(engine) as s:
        deadlines = [
            date.fromisoformat(r.details["deadline"])
            for r in s.exec(select(Resource).where(Resource.kind == "scenario"))
        ]
    engine.dispose()
    assert all(d > today for d in deadlines)
    assert sum(d <= today + timedelta(days=14) for d in deadlines) >= 5


def test_own_records_are_mostly_chinese_with_some_english():
    records = [r for name in demo.RESOURCE_FILES for r in demo.own_records(name)]
    english = [r for r in records if not any("\u4e00" <= c <= "\u9fff" for c in r["title"])]
    assert 0 < len(english) < len(records) / 4
    emails = [e["email"] for e in demo.own_records("enterprises")]
    assert all(e.endswith((".example.com", ".example.cn", "@example.com", "@example.cn")) for e in emails)


SYNTHETIC = [
    {
        "id": "t-1",
        "title": "一种柔性锂电池隔膜材料",
        "abstract": "介绍隔膜材料。",
        "keywords": ["锂电池"],
        "discipline": "材料科学与工程",
        "category": "工学",
    },
    {
        "id": "t-2",
        "title": "",
        "abstract": "针对钢轨探伤效率低的问题,提出了一种基于超声相控阵的钢轨缺陷检测方法.实验表明效果良好.",
        "keywords": None,
        "discipline": "交通运输工程",
        "category": "工学",
    },
    {
        "id": "t-3",
        "title": "",
        "abstract": "<br>作者回忆了一次旅行。",
        "keywords": ["游记", "散文"],
        "discipline": None,
        "category": None,
    },
]


def test_corpus_records_become_results_deterministically(tmp_path):
    taxonomy = default_taxonomy()
    results = demo.corpus_results(SYNTHETIC, 0, taxonomy)
    assert {r["external_id"] for r in results[:2]} == {
        "t-1",
        "t-2",
    }  # technical records with a discipline first
    by_id = {r["external_id"]: r for r in results}
    assert by_id["t-1"]["industries"][0] == "new-materials" and "energy-storage" in by_id["t-1"]["industries"]
    assert by_id["t-2"]["title"] == "一种基于超声相控阵的钢轨缺陷检测方法"
    assert by_id["t-2"]["industries"] == ["transportation"]
    assert (
        by_id["t-3"]["title"] == "游记、散文相关研究成果"
        and by_id["t-3"]["description"] == "作者回忆了一次旅行。"
    )
    for r in results:
        d = r["details"]
        assert 1 <= d["trl"] <= 9 and d["transfer_modes"] and d["holder"]
    assert demo.corpus_results(SYNTHETIC, 0, taxonomy) == results  # same input, same output
    assert len(demo.corpus_results(SYNTHETIC, 2, taxonomy)) == 2

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in SYNTHETIC), encoding="utf-8")
    assert demo.find_corpus(corpus) == corpus
    assert demo.find_corpus(tmp_path / "missing.jsonl") is None


def test_demo_with_a_corpus_loads_its_results(env, tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in SYNTHETIC), encoding="utf-8")
    monkeypatch.setenv("MATCHER_DEMO_CORPUS", str(corpus))
    with pytest.raises(SystemExit):
        main(["demo", "--results", "2", "--skip-encoder"])
    out = capsys.readouterr().out
    own = len(demo.own_records("results"))
    assert f"results: {own + 2} ({own + 2} created" in out
    kinds, _, _ = counts(env)
    assert kinds["result"] == own + 2


@pytest.fixture
def fake_build(monkeypatch):
    """The teacher conversion and the distillation replaced by stand-ins that record their calls."""
    calls: list[str] = []

    def build_model_dir(out_dir, **kwargs):
        calls.append("teacher")
        out_dir.mkdir(parents=True, exist_ok=True)
        return out_dir

    def distil_static_student(teacher, out_dir, recipe=None, **kwargs):
        calls.append("student")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "modules.json").write_text("[]")
        return out_dir

    e5 = types.ModuleType("embeddings.encoders.e5_package")
    e5.PackageModelError = ValueError
    e5.build_model_dir = build_model_dir
    distil = types.ModuleType("training.encoders.distil")
    distil.DistilRecipe = lambda: None
    distil.distil_static_student = distil_static_student
    monkeypatch.setitem(sys.modules, "embeddings.encoders.e5_package", e5)
    monkeypatch.setitem(sys.modules, "training.encoders.distil", distil)
    monkeypatch.setattr("embeddings.encoders.sentence.load_encoder", lambda path, **kw: object())
    return calls


def test_shipped_encoder_is_built_only_when_missing(env, fake_build):
    from matcher.cli.models import ensure_shipped_encoder
    from matcher.models.encoder import encoder_location, shipped_student_dir, shipped_teacher_dir

    target = ensure_shipped_encoder(env, show_progress=False)
    assert target == shipped_student_dir(env) and fake_build == ["teacher", "student"]
    assert encoder_location(env) == str(target)
    assert ensure_shipped_encoder(env, show_progress=False) == target and len(fake_build) == 2
    ensure_shipped_encoder(env, rebuild=True, show_progress=False)
    assert fake_build == ["teacher", "student"] * 2
    assert not shipped_teacher_dir(env).exists()  # the converted teacher is not kept unless asked
    ensure_shipped_encoder(env, keep_teacher=True, show_progress=False)
    assert fake_build[-1] == "teacher" and shipped_teacher_dir(env).is_dir()


def test_demo_builds_the_shipped_encoder(env, fake_build, capsys):
    from matcher.models.encoder import shipped_student_dir

    with pytest.raises(SystemExit):
        main(["demo", "--results", "0"])
    assert f"default encoder: {shipped_student_dir(env)}" in capsys.readouterr().out
    assert fake_build == ["teacher", "student"]


def test_an_encoder_trained_for_the_store_wins_over_the_shipped_one(env, fake_build, capsys):
    from matcher.models.encoder import encoder_location

    env.default_encoder_dir.mkdir(parents=True)
    (env.default_encoder_dir / "modules.json").write_text("[]")
    with pytest.raises(SystemExit):
        main(["demo", "--results", "0"])
    assert "trained for this store" in capsys.readouterr().out
    assert fake_build == [] and encoder_location(env) == str(env.default_encoder_dir)
