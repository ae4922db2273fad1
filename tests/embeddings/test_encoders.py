import json
import random

import numpy as np
import pytest

from embeddings.encoders.base import Encoder
from embeddings.encoders.sentence import (
    EncoderNotFoundError,
    SentenceTransformerEncoder,
    load_encoder,
    model_dir_hash,
)
from embeddings.encoders.static_zh import StaticZhEmbedding
from training.data.pairs import Bm25, extract_problem_clause, mine_pairs, split_sentences
from training.encoders.static import train_static_encoder

TOPICS = {
    "battery": (
        ["储能", "锂电池", "电解液", "正极材料", "充放电", "循环寿命"],
        ["lithium battery", "electrolyte", "cathode"],
    ),
    "water": (
        ["污水处理", "膜分离", "絮凝", "活性污泥", "出水水质", "脱氮"],
        ["wastewater", "membrane", "sludge"],
    ),
    "crop": (["水稻", "病虫害", "施肥", "产量", "土壤肥力", "灌溉"], ["rice", "pest", "fertilizer"]),
    "robot": (
        ["机器人", "路径规划", "传感器", "机械臂", "避障", "运动控制"],
        ["robot", "path planning", "sensor"],
    ),
    "medicine": (
        ["中药", "高血压", "临床", "疗效", "患者", "不良反应"],
        ["hypertension", "clinical", "patient"],
    ),
    "bridge": (["桥梁", "混凝土", "裂缝", "荷载", "钢筋", "抗震"], ["bridge", "concrete", "crack"]),
    "network": (
        ["网络安全", "入侵检测", "加密", "流量", "协议", "漏洞"],
        ["intrusion", "encryption", "traffic"],
    ),
    "finance": (["金融", "信贷", "银行", "利率", "违约", "风险评估"], ["credit", "bank", "interest rate"]),
}


def make_records(n_per_topic: int = 25, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for topic, (zh, en) in TOPICS.items():
        for i in range(n_per_topic):
            w = rng.sample(zh, 5)
            e = rng.sample(en, 2)
            text = (
                f"针对{w[0]}{w[1]}中存在的{w[2]}问题,提出了一种新的处理方法."
                f"该方法结合{w[3]}的特点,改进了{w[1]}的设计."
                f"实验表明{w[4]}和{w[0]}均得到明显改善."
                f"We study {e[0]} and {e[1]} in practice."
            )
            out.append(
                {
                    "id": f"{topic}-{i:03d}",
                    "title": f"{w[0]}与{w[3]}研究" if i % 2 == 0 else "",
                    "text": text,
                    "keywords": w[:3] if i % 3 else [],
                    "topic": topic,
                }
            )
    return out


RECORDS = make_records()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("static") / "model"
    return train_static_encoder(
        RECORDS, out, dim=32, epochs=8, batch_size=32, exclude_ids=["bank-excluded"], show_progress=False
    )


@pytest.fixture(scope="module")
def encoder(model_dir):
    return load_encoder(model_dir)


def test_saved_layout_and_manifest(model_dir):
    for name in (
        "modules.json",
        "vocab.json",
        "model.safetensors",
        "static_zh_config.json",
        "training_manifest.json",
    ):
        assert (model_dir / name).is_file(), name
    modules = json.loads((model_dir / "modules.json").read_text())
    assert modules[0]["type"] == "embeddings.encoders.static_zh.StaticZhEmbedding"
    manifest = json.loads((model_dir / "training_manifest.json").read_text())
    assert manifest["records_used"] == len(RECORDS)
    assert manifest["recipe"]["dim"] == 32
    assert {"torch", "sentence_transformers", "python"} <= set(manifest["libraries"])
    assert manifest["seconds_total"] > 0
    assert set(manifest["pairs_drawn"]) <= {"title", "keywords", "problem", "ict"}


def test_encoder_protocol_dimension_and_normalisation(encoder):
    assert isinstance(encoder, Encoder)
    assert encoder.dimension == 32
    docs = encoder.encode_documents([r["text"] for r in RECORDS[:20]], batch_size=7)
    assert docs.shape == (20, 32) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    q = encoder.encode_queries(["锂电池电解液", "wastewater sludge"])
    assert q.shape == (2, 32) and q.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert encoder.encode_documents([]).shape == (0, 32)


def test_query_is_closer_to_its_document_than_to_unrelated_ones(encoder):
    docs = encoder.encode_documents([r["text"] for r in RECORDS])
    topics = np.array([r["topic"] for r in RECORDS])
    cases = {
        "battery": "锂电池正极材料的循环寿命问题",
        "water": "污水处理中的脱氮",
        "robot": "robot path planning",
    }
    for topic, query in cases.items():
        sims = docs @ encoder.encode_queries([query])[0]
        assert topics[int(np.argmax(sims))] == topic, query
        assert sims[topics == topic].mean() > sims[topics != topic].max() - 0.2
    # a problem clause cut out of a record finds that record's topic among the rest
    rec = RECORDS[3]
    clause, rest = extract_problem_clause(rec["text"])
    d = encoder.encode_documents([rest])[0]
    q = encoder.encode_queries([clause])[0]
    other = encoder.encode_documents([r["text"] for r in RECORDS if r["topic"] != rec["topic"]][:40])
    assert q @ d > np.max(other @ q)


def test_reload_gives_same_vectors_and_id(model_dir, encoder):
    again = load_encoder(str(model_dir))
    assert again.model_id == encoder.model_id
    assert encoder.model_id.startswith("model@") and len(encoder.model_id.split("@")[1]) == 12
    texts = ["储能锂电池", "bridge crack detection", ""]
    np.testing.assert_allclose(again.encode_documents(texts), encoder.encode_documents(texts), atol=1e-6)


def test_sentence_transformers_loads_the_directory(model_dir, encoder):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), trust_remote_code=True, local_files_only=True)
    v = model.encode(["中药治疗高血压"], normalize_embeddings=True)
    np.testing.assert_allclose(v, encoder.encode_documents(["中药治疗高血压"]), atol=1e-5)


def test_retraining_changes_model_id(tmp_path, encoder):
    other = train_static_encoder(
        RECORDS[:120], tmp_path / "model", dim=32, epochs=2, seed=7, show_progress=False
    )
    assert load_encoder(other).model_id != encoder.model_id
    assert model_dir_hash(other) != model_dir_hash(encoder.source)


def test_exclude_ids_are_not_trained_on(tmp_path):
    out = train_static_encoder(
        RECORDS,
        tmp_path / "m",
        dim=16,
        epochs=1,
        exclude_ids=[r["id"] for r in RECORDS[:50]],
        show_progress=False,
    )
    manifest = json.loads((out / "training_manifest.json").read_text())
    assert manifest["records_excluded"] == 50
    assert manifest["records_used"] == len(RECORDS) - 50


def test_oov_words_fall_back_to_characters():
    module = StaticZhEmbedding(["锂", "电", "池", "锂电池", "battery"], 8, num_buckets=4)
    assert module.token_ids(["锂电池"]) == [3]
    assert module.token_ids(["电池"]) == [1, 2]  # unseen word -> its characters
    assert module.token_ids(["池塘"])[0] == 2 and module.token_ids(["池塘"])[1] >= 5  # unseen char -> bucket
    assert 5 <= module.token_ids(["unknownword"])[0] < 9
    no_buckets = StaticZhEmbedding(["a1"], 8)
    assert no_buckets.token_ids(["zzz"]) == []


def test_missing_model_errors(tmp_path, monkeypatch):
    with pytest.raises(EncoderNotFoundError) as err:
        load_encoder(tmp_path / "does" / "not" / "exist")
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)
    with pytest.raises(EncoderNotFoundError):
        load_encoder("./models/nope")
    with pytest.raises(EncoderNotFoundError):
        load_encoder("")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EncoderNotFoundError, match="not a sentence-transformers model"):
        load_encoder(empty)
    with pytest.raises(EncoderNotFoundError, match="local Hugging Face cache"):
        SentenceTransformerEncoder("parkmatch-tests/no-such-model", offline=True)
    with pytest.raises(EncoderNotFoundError, match="local Hugging Face cache"):
        load_encoder("parkmatch-tests/no-such-model", offline=True)


def test_embeddings_code_reads_no_environment():
    from pathlib import Path

    import embeddings

    root = Path(embeddings.__file__).parent
    readers = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "os.environ" in p.read_text(encoding="utf-8") or "getenv" in p.read_text(encoding="utf-8")
    ]
    assert readers == []


def test_foreign_module_classes_are_refused(tmp_path, model_dir):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    modules = json.loads((bad / "modules.json").read_text())
    modules[0]["type"] = "somepackage.Evil"
    (bad / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EncoderNotFoundError, match="refusing"):
        load_encoder(bad)


def test_pair_mining():
    pairs = mine_pairs(RECORDS[:10])
    kinds = {p.kind for p in pairs}
    assert {"title", "keywords", "problem", "ict"} <= kinds
    problem = next(p for p in pairs if p.kind == "problem")
    assert problem.query.endswith("问题") and "针对" not in problem.positive
    assert problem.query not in problem.positive
    assert split_sentences("第一句话.第二句3.5倍。第三个句子") == ["第一句话.", "第二句3.5倍。", "第三个句子"]
    assert extract_problem_clause("为解决城市内涝频发问题,建立了模型.结果良好.") == (
        "城市内涝频发问题",
        "建立了模型.结果良好.",
    )
    with pytest.raises(ValueError):
        mine_pairs(RECORDS[:2], kinds=("nope",))


def test_bm25_ranks_the_matching_document_first():
    docs = [["储能", "锂电池"], ["污水", "处理"], ["锂电池", "回收", "回收"]]
    top = Bm25(docs).top_k([["回收"], ["污水"], ["未知"]], 2)
    assert top[0, 0] == 2 and top[1, 0] == 1 and (top[2] == -1).all()


def test_large_batches_are_tokenised_in_process(encoder, monkeypatch):
    """No worker process is ever started for encoding: one forked inside the server outlives its crash."""
    import multiprocessing
    import os

    texts = [f"{r['text']} 第{i}号" for i, r in enumerate(RECORDS * 6)][:1100]
    one_by_one = np.vstack([encoder.encode_documents([t]) for t in texts[:50]])

    def refuse(*args, **kwargs):
        raise AssertionError("encoding started a process")

    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", refuse)
    batch = encoder.encode_documents(texts)
    assert batch.shape == (1100, encoder.dimension)
    np.testing.assert_allclose(batch[:50], one_by_one, atol=1e-6)
    assert multiprocessing.active_children() == []


def test_model_saved_under_the_old_class_path_loads_and_is_migrated_once(tmp_path, model_dir, caplog):
    import logging
    import shutil

    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    modules = json.loads((old / "modules.json").read_text())
    modules[0]["type"] = "embeddings.static_zh.StaticZhEmbedding"
    (old / "modules.json").write_text(json.dumps(modules))
    query = ["锂电池储能 battery"]
    expected = load_encoder(model_dir).encode_queries(query)
    with caplog.at_level(logging.WARNING, logger="embeddings.encoders.sentence"):
        first = load_encoder(old)
        second = load_encoder(old)
    np.testing.assert_allclose(first.encode_queries(query), expected, atol=1e-6)
    np.testing.assert_allclose(second.encode_queries(query), expected, atol=1e-6)
    migrated = json.loads((old / "modules.json").read_text())
    assert migrated[0]["type"] == "embeddings.encoders.static_zh.StaticZhEmbedding"
    assert migrated[1:] == modules[1:]
    assert [r.getMessage() for r in caplog.records if "modules.json" in r.getMessage()] == [
        f"{old.resolve()}: modules.json rewritten to the current class path "
        "embeddings.encoders.static_zh.StaticZhEmbedding"
    ]
    assert first.model_id == second.model_id


def test_old_class_path_loads_when_the_directory_cannot_be_rewritten(tmp_path, model_dir, monkeypatch):
    import shutil

    from embeddings.encoders import sentence

    old = tmp_path / "readonly"
    shutil.copytree(model_dir, old)
    modules = json.loads((old / "modules.json").read_text())
    modules[0]["type"] = "embeddings.static_zh.StaticZhEmbedding"
    (old / "modules.json").write_text(json.dumps(modules))

    def read_only(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(sentence, "atomic_write_json", read_only)
    enc = load_encoder(old)
    assert enc.encode_queries(["锂电池"]).shape == (1, enc.dimension)
    assert (
        json.loads((old / "modules.json").read_text())[0]["type"] == "embeddings.static_zh.StaticZhEmbedding"
    )


def test_service_setting_keeps_model_names_offline(tmp_path, monkeypatch):
    from matcher.models.encoder import EncoderUnavailable, load_configured_encoder
    from matcher.settings import Settings

    monkeypatch.setenv("MATCHER_HUB_OFFLINE", "true")
    settings = Settings(data_dir=tmp_path, encoder="parkmatch-tests/no-such-model")
    assert settings.hub_offline
    with pytest.raises(EncoderUnavailable, match="local Hugging Face cache"):
        load_configured_encoder(settings)


def test_a_model_inside_a_cache_folder_is_hashed_by_its_files(tmp_path, encoder):
    """A model built under ~/.cache keeps a hash of its own files (only its own `.cache` folder is left out)."""
    import shutil

    inside = tmp_path / ".cache" / "models" / "m"
    shutil.copytree(encoder.source, inside)
    assert model_dir_hash(inside) == model_dir_hash(encoder.source)
    (inside / ".cache").mkdir()
    (inside / ".cache" / "x.json").write_text("{}")
    assert model_dir_hash(inside) == model_dir_hash(encoder.source)
