"""Encoder training: supervised pairs, the `matcher train encoder` command, and refusal of bad model artefacts."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select

from matcher.cli.main import main
from matcher.domain.tables import Feedback, Need, Resource, utcnow
from tests.conftest import demo_training_records

pytestmark = pytest.mark.slow


def _cos_to_positive(model_dir, pairs) -> np.ndarray:
    from embeddings.encoders.sentence import load_encoder

    enc = load_encoder(model_dir)
    q = enc.encode_queries([p[0] for p in pairs])
    d = enc.encode_documents([p[1] for p in pairs])
    return (q * d).sum(axis=1)


def test_supervised_pairs_move_queries_towards_their_positives(tmp_path):
    from training.encoders.static import train_static_encoder

    records = demo_training_records()
    docs = [r for r in records if r["id"].startswith(("results-", "scenarios-"))]
    # needs phrased unlike the documents they are paired with: only the supervision links them
    queries = [
        "仓库盘点自动化",
        "老人跌倒监测",
        "冷链运输温控",
        "工业质检视觉",
        "电池回收梯次利用",
        "农田灌溉节水",
    ]
    pairs = [
        (q, d["title"] + "\n" + d["text"], None)
        for q, d in zip(queries, docs[:: len(docs) // 6], strict=False)
    ]
    common = {"dim": 64, "epochs": 8, "show_progress": False, "min_count": 1}
    base = train_static_encoder(records, tmp_path / "base", **common)
    sup = train_static_encoder(records, tmp_path / "sup", pairs=pairs, pair_repeats=4, **common)
    before, after = _cos_to_positive(base, pairs), _cos_to_positive(sup, pairs)
    assert (after > before + 0.1).all(), (before, after)
    manifest = json.loads((sup / "training_manifest.json").read_text())
    assert manifest["supervised_pairs"]["used"] == len(pairs)
    assert manifest["supervised_pairs"]["matched_to_a_record"] == len(pairs)
    assert manifest["pairs_drawn"]["supervised"] == len(pairs) * 4 * 8


def test_pairs_with_a_given_hard_negative_push_it_away(tmp_path):
    from training.encoders.static import train_static_encoder

    records = demo_training_records()
    pos, neg = records[0], records[1]
    q = "一个与两条记录都无关的查询 需求描述"
    pairs = [(q, pos["title"] + "\n" + pos["text"], neg["title"] + "\n" + neg["text"])]
    out = train_static_encoder(
        records,
        tmp_path / "m",
        dim=64,
        epochs=8,
        show_progress=False,
        min_count=1,
        pairs=pairs,
        pair_repeats=4,
    )
    from embeddings.encoders.sentence import load_encoder

    enc = load_encoder(out)
    qv = enc.encode_queries([q])[0]
    dv = enc.encode_documents([pairs[0][1], pairs[0][2]])
    assert qv @ dv[0] > qv @ dv[1] + 0.1


# ------------------------------------------------------------------------------------- the command


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    monkeypatch.setenv("MATCHER_DATA_DIR", str(data_dir))
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    monkeypatch.delenv("MATCHER_ENCODER", raising=False)
    return data_dir


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


def _demo_store_with_feedback(n_needs: int):
    """The project's demo records in the CLI's store, and one accepted plus one rejected resource for n needs."""
    from matcher.demo.dataset import load_demo
    from matcher.settings import Settings
    from matcher.store.db import init_db, make_engine

    settings = Settings()
    db = make_engine(settings)
    init_db(db)
    load_demo(db, corpus=None)
    with Session(db) as s:
        resources = list(s.exec(select(Resource).order_by(Resource.id)))
        needs = list(s.exec(select(Need).order_by(Need.id)))[:n_needs]
        t0 = utcnow()
        for i, need in enumerate(needs):
            good, bad = resources[(3 * i) % len(resources)], resources[(3 * i + 1) % len(resources)]
            for k, (res, action) in enumerate(((good, "accepted"), (bad, "rejected"))):
                s.add(
                    Feedback(
                        tenant_id=need.tenant_id,
                        need_id=need.id,
                        resource_id=res.id,
                        action=action,
                        created_at=t0 + timedelta(minutes=2 * i + k),
                    )
                )
        s.commit()
    db.dispose()
    return settings


def test_cli_refuses_too_little_data_with_one_line(cli_env, capsys):
    assert cli("train", "encoder", "--quiet") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: too little data to train an encoder: 0 active resources")
    assert not (cli_env / "models" / "registry").exists()


def test_cli_trains_from_feedback_evaluates_and_registers(cli_env, capsys, encoder_dir, monkeypatch):
    settings = _demo_store_with_feedback(24)
    # an encoder in service: the candidate must beat it on the held-out needs to replace it
    shutil.copytree(encoder_dir, settings.default_encoder_dir)
    served_before = (settings.default_encoder_dir / "model.safetensors").read_bytes()
    assert cli("train", "encoder", "--quiet", "--dim", "32", "--epochs", "4") == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["feedback_pairs"] == 12  # the older half of the 24 needs; the newest 12 are held out
    ev = out["evaluation"]
    assert ev["queries"] == 12 and ev["ci95"][0] <= ev["diff"] <= ev["ci95"][1]
    manifest = json.loads((settings.models_dir / "registry" / out["model"] / "manifest.json").read_text())
    assert manifest["kind"] == "encoder" and manifest["data"]["pairs_with_rejected_negative"] == 12
    assert set(manifest["ci"]) >= {"low", "high", "diff"} and "ndcg@10" in manifest["metrics"]
    trained = json.loads((Path(out["path"]) / "training_manifest.json").read_text())["supervised_pairs"]
    assert trained["used"] == 12 and trained["with_given_negative"] == 12
    assert trained["matched_to_a_record"] == 12  # resource text = the record's title and description + tags
    if ev["ci95"][0] > 0:
        assert out["installed"] and manifest["status"] == "active"
    else:  # not better with confidence: registered, not installed, the served model untouched
        assert not out["installed"] and manifest["status"] == "rejected"
        assert (settings.default_encoder_dir / "model.safetensors").read_bytes() == served_before
        assert "keeps serving" in out["note"]


def test_cli_with_too_little_feedback_registers_an_unevaluated_candidate(cli_env, capsys, encoder_dir):
    settings = _demo_store_with_feedback(3)
    shutil.copytree(encoder_dir, settings.default_encoder_dir)
    assert cli("train", "encoder", "--quiet", "--dim", "32", "--epochs", "2") == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["evaluation"] is None and not out["installed"] and "not evaluated" in out["note"]
    assert out["feedback_pairs"] == 3
    manifest = json.loads((settings.models_dir / "registry" / out["model"] / "manifest.json").read_text())
    assert manifest["status"] == "candidate"


# ------------------------------------------------------------------------------------- bad artefacts


def test_corrupt_model_directory_is_refused_at_load_and_not_installed(tmp_path, encoder_dir):
    from embeddings.encoders.sentence import load_encoder
    from matcher.cli.train import _install_default_encoder
    from matcher.settings import Settings

    bad = tmp_path / "bad-model"
    shutil.copytree(encoder_dir, bad)
    (bad / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="damaged or incomplete"):
        load_encoder(bad)
    # the service refuses to start on it with one readable line
    from matcher.models.encoder import EncoderUnavailable, load_configured_encoder

    with pytest.raises(EncoderUnavailable, match="damaged or incomplete"):
        load_configured_encoder(Settings(data_dir=tmp_path / "x", database_url=None, encoder=str(bad)))
    foreign = tmp_path / "foreign-model"
    shutil.copytree(encoder_dir, foreign)
    (foreign / "modules.json").write_text(
        json.dumps([{"idx": 0, "name": "0", "path": "", "type": "evil.Module"}])
    )
    with pytest.raises(ValueError, match="refusing to import"):
        load_encoder(foreign)

    settings = Settings(data_dir=tmp_path / "data", database_url=None)
    shutil.copytree(encoder_dir, settings.default_encoder_dir)
    served = (settings.default_encoder_dir / "model.safetensors").read_bytes()
    for model in (bad, foreign):
        with pytest.raises(ValueError):
            _install_default_encoder(settings, model)
    assert (settings.default_encoder_dir / "model.safetensors").read_bytes() == served
    assert load_encoder(settings.default_encoder_dir).dimension == 64
    assert not [p for p in settings.default_encoder_dir.parent.iterdir() if p.name.startswith(".")]
