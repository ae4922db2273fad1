import json
import math

import pytest

from training.data.beir import BeirFormatError, judged_doc_ids, load_beir, qrels_splits
from training.evaluation.metrics import evaluate, mrr_at_k, ndcg_at_k, per_query, recall_at_k

# q1: graded judgements, d3 judged non-relevant, d5 unjudged
QRELS = {
    "q1": {"d1": 3, "d2": 2, "d3": 0, "d4": 1},
    "q2": {"x": 1},  # missing from the run: scores 0
    "q3": {"y": 0},  # no relevant document: not counted in the mean
}
RUN = {
    "q1": [("d2", 0.1), ("d3", 0.9), ("d1", 0.8), ("d5", 0.7), ("d4", 0.6)],  # ranked: d3 d1 d5 d4 d2
    "q3": [("y", 1.0)],
}


def test_ndcg_hand_computed():
    # top 3 = d3 (0), d1 (3), d5 (0): DCG = 3 / log2(3); ideal = 3 + 2 / log2(3) + 1 / log2(4)
    q1 = (3 / math.log2(3)) / (3 + 2 / math.log2(3) + 0.5)
    assert q1 == pytest.approx(0.397490, abs=1e-6)
    assert per_query(RUN, QRELS, "ndcg", 3) == pytest.approx({"q1": q1, "q2": 0.0})
    assert ndcg_at_k(RUN, QRELS, 3) == pytest.approx(q1 / 2)
    # k = 5: d4 at rank 4, d2 at rank 5
    dcg5 = 3 / math.log2(3) + 1 / math.log2(5) + 2 / math.log2(6)
    assert per_query(RUN, QRELS, "ndcg", 5)["q1"] == pytest.approx(dcg5 / (3 + 2 / math.log2(3) + 0.5))


def test_recall_and_mrr_hand_computed():
    assert per_query(RUN, QRELS, "recall", 3) == pytest.approx({"q1": 1 / 3, "q2": 0.0})
    assert recall_at_k(RUN, QRELS, 5) == pytest.approx((1.0 + 0.0) / 2)
    assert mrr_at_k(RUN, QRELS, 3) == pytest.approx(0.5 / 2)
    assert mrr_at_k(RUN, QRELS, 1) == 0.0


def test_perfect_run_and_evaluate_keys():
    run = {"q1": [("d1", 3.0), ("d2", 2.0), ("d4", 1.0)], "q2": [("x", 1.0)]}
    res = evaluate(run, QRELS, ks=(1, 10))
    assert res["ndcg@10"] == pytest.approx(1.0)
    assert res["recall@10"] == pytest.approx(1.0)
    assert res["mrr@1"] == pytest.approx(1.0)
    assert set(res) == {f"{m}@{k}" for m in ("ndcg", "recall", "mrr") for k in (1, 10)}


def test_ties_keep_input_order_and_duplicates_count_once():
    qrels = {"q": {"b": 1}}
    assert mrr_at_k({"q": [("a", 1.0), ("b", 1.0)]}, qrels, 10) == 0.5
    assert mrr_at_k({"q": [("b", 1.0), ("a", 1.0)]}, qrels, 10) == 1.0
    # a duplicated document does not push the relevant one down
    assert mrr_at_k({"q": [("a", 3.0), ("a", 2.0), ("b", 1.0)]}, qrels, 10) == 0.5


def _write_set(root, *, corpus=None, queries=None, qrels=None):
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    corpus = corpus or [{"_id": "d1", "title": "t", "text": "alpha"}, {"_id": "d2", "text": "beta"}]
    queries = queries or [{"_id": "q1", "text": "alpha?"}, {"_id": "q2", "text": "unjudged"}]
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in corpus) + "\n", encoding="utf-8")
    (root / "queries.jsonl").write_text("\n".join(json.dumps(r) for r in queries) + "\n", encoding="utf-8")
    (root / "qrels" / "test.tsv").write_text(
        qrels or "query-id\tcorpus-id\tscore\nq1\td1\t2\n", encoding="utf-8"
    )
    return root


def test_load_beir_roundtrip(tmp_path):
    d = _write_set(tmp_path / "set")
    corpus, queries, qrels = load_beir(d, "test")
    assert corpus == {"d1": {"title": "t", "text": "alpha"}, "d2": {"title": "", "text": "beta"}}
    assert queries == {"q1": "alpha?"}  # restricted to the judged queries of the split
    assert qrels == {"q1": {"d1": 2}}
    assert qrels_splits(d) == ["test"]
    assert judged_doc_ids(d) == {"d1"}


def test_load_beir_errors(tmp_path):
    with pytest.raises(BeirFormatError, match="not found"):
        load_beir(tmp_path / "nope", "test")
    d = _write_set(tmp_path / "a")
    with pytest.raises(BeirFormatError, match=r"missing qrels file.*splits present: test"):
        load_beir(d, "dev")
    d = _write_set(tmp_path / "b", qrels="query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(BeirFormatError, match=r"test.tsv:2: expected 3"):
        load_beir(d, "test")
    d = _write_set(tmp_path / "c", qrels="query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(BeirFormatError, match="not a number"):
        load_beir(d, "test")
    d = _write_set(tmp_path / "e", qrels="query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    with pytest.raises(BeirFormatError, match="not in queries.jsonl"):
        load_beir(d, "test")
    d = _write_set(tmp_path / "f", qrels="query-id\tcorpus-id\tscore\nq1\td9\t1\n")
    with pytest.raises(BeirFormatError, match="not in corpus.jsonl"):
        load_beir(d, "test")
    d = _write_set(tmp_path / "g")
    (d / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{broken\n', encoding="utf-8")
    with pytest.raises(BeirFormatError, match=r"corpus.jsonl:2: not valid JSON"):
        load_beir(d, "test")
    (d / "corpus.jsonl").unlink()
    with pytest.raises(BeirFormatError, match="missing benchmark file"):
        load_beir(d, "test")
