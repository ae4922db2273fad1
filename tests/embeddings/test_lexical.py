"""LexicalIndex: BM25 by hand and against bm25s, incremental updates == fresh build, filters, persistence."""

from __future__ import annotations

import math
import random
import threading

import numpy as np
import pytest

from embeddings.lexical.bm25 import LexicalIndex
from embeddings.persist import IndexCorruptError, IndexMismatchError, read_manifest
from embeddings.text import tokenize


def zipf_docs(n: int, *, seed: int = 0, vocab: int = 400) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(vocab)]
    out = []
    for _ in range(n):
        ln = int(rng.integers(0, 60))
        out.append([words[min(int(z), vocab) - 1] for z in rng.zipf(1.3, ln)])
    return out


def assert_same_results(a: LexicalIndex, b: LexicalIndex, queries: list[list[str]], k: int = 10) -> None:
    for q in queries:
        ra, rb = a.search(q, k), b.search(q, k)
        assert [i for i, _ in ra] == [i for i, _ in rb], q
        assert np.allclose([s for _, s in ra], [s for _, s in rb], rtol=1e-6)


# ------------------------------------------------------------------------------------------ scoring


def test_bm25_by_hand() -> None:
    idx = LexicalIndex(k1=1.2, b=0.75)
    idx.upsert(1, ["a", "b", "a"])
    idx.upsert(2, ["b", "c"])
    idx.upsert(3, ["a", "c", "c", "d"])
    # N = 3, avgdl = 3; df(a) = 2 -> idf = ln(1 + 1.5 / 2.5) = ln 1.6
    # doc 1: tf 2, |d| 3 -> norm 1.2 -> 2 / 3.2 = 0.625;  doc 3: tf 1, |d| 4 -> norm 1.5 -> 1 / 2.5 = 0.4
    res = idx.search(["a"], 10)
    assert [i for i, _ in res] == [1, 3]
    assert res[0][1] == pytest.approx(0.29375226827858477, rel=1e-6)
    assert res[1][1] == pytest.approx(0.18800145169829425, rel=1e-6)
    # d: df 1 -> idf ln(1 + 2.5 / 1.5); doc 3 gets both terms, a repeated query token counts twice
    idf_d = math.log(1 + 2.5 / 1.5)
    res = dict(idx.search(["a", "d", "d"], 10))
    assert res[3] == pytest.approx(0.18800145169829425 + 2 * idf_d * 0.4, rel=1e-6)
    assert idx.avgdl == 3.0 and len(idx) == 3
    stats = idx.term_stats(["a", "zzz"])
    assert stats["a"]["df"] == 2 and stats["a"]["idf"] == pytest.approx(math.log(1.6))
    assert stats["zzz"] == {"df": 0, "idf": 0.0}
    # k1 / b are honoured: b = 0 ignores length
    flat = LexicalIndex(k1=1.2, b=0.0)
    flat.upsert_many([1, 2], [["x"], ["x", "y", "y", "y", "y"]])
    s = dict(flat.search(["x"], 2))
    assert s[1] == pytest.approx(s[2])


def test_matches_bm25s() -> None:
    bm25s = pytest.importorskip("bm25s")
    docs = zipf_docs(400, seed=1)
    docs[5] = []  # an empty document counts in N and avgdl
    ids = list(range(100, 500))
    idx = LexicalIndex(k1=1.5, b=0.7)
    idx.upsert_many(ids, docs)
    ref = bm25s.BM25(method="lucene", k1=1.5, b=0.7)
    ref.index(docs, show_progress=False)
    rng = random.Random(2)
    vocab = ref.vocab_dict
    checked = 0
    for _ in range(40):
        q = [f"w{int(rng.paretovariate(0.8)) % 400}" for _ in range(rng.randint(1, 6))]
        q = [t for t in q if t in vocab]
        if not q:
            continue
        expected = np.asarray(ref.get_scores(q), dtype=np.float64)
        got = idx.search(q, 400)
        assert len(got) == int((expected > 0).sum())
        for doc_id, score in got:
            assert score == pytest.approx(expected[doc_id - 100], rel=1e-5, abs=1e-6)
        # ranking: scores are non-increasing and the top-10 score set equals bm25s' top-10
        top = np.sort(expected)[::-1][:10]
        assert np.allclose([s for _, s in got[:10]], top[: len(got[:10])], rtol=1e-5)
        checked += 1
    assert checked > 20


def test_chinese_tokens_end_to_end() -> None:
    texts = {
        1: "石墨烯锂离子电池负极材料的制备方法",
        2: "一种智能电网储能调度系统",
        3: "锂电池回收中的湿法冶金工艺",
    }
    idx = LexicalIndex()
    idx.upsert_many(list(texts), [tokenize(t) for t in texts.values()])
    q = tokenize("锂电池 负极")
    res = idx.search(q, 3)
    assert res and res[0][0] in (1, 3)
    assert 2 not in [i for i, _ in res]
    matched = idx.matched_terms(q, res[0][0])
    assert matched and set(matched) <= set(q)
    explained = idx.explain(q, res[0][0])
    assert sum(explained.values()) == pytest.approx(res[0][1], rel=1e-5)
    assert idx.matched_terms(q, 999) == [] and idx.explain(q, 999) == {}


def test_edge_cases() -> None:
    idx = LexicalIndex()
    assert idx.search(["a"], 5) == []
    idx.upsert(1, [])
    idx.upsert(2, ["a"])
    assert idx.search(["nope"], 5) == [] and idx.search([], 5) == [] and idx.search(["a"], 0) == []
    assert [i for i, _ in idx.search(["a", "nope"], 5)] == [2]
    assert idx.remove(2) and not idx.remove(2)
    assert idx.search(["a"], 5) == [] and len(idx) == 1
    assert idx.term_stats(["a"])["a"]["df"] == 0
    with pytest.raises(ValueError):
        idx.upsert_many([1, 2], [["a"]])
    with pytest.raises(ValueError):
        LexicalIndex(b=1.5)


# ------------------------------------------------------------------------------------- incremental


def test_incremental_equals_fresh_build() -> None:
    rng = random.Random(7)
    pool = zipf_docs(900, seed=3)
    live: dict[int, list[str]] = {}
    idx = LexicalIndex(compact_fraction=0.3)
    next_id = 1
    compactions_seen = 0
    for _ in range(1500):
        op = rng.random()
        if op < 0.55 or not live:
            doc = pool[rng.randrange(len(pool))]
            idx.upsert(next_id, doc)
            live[next_id] = doc
            next_id += 1
        elif op < 0.75:
            i = rng.choice(list(live))
            doc = pool[rng.randrange(len(pool))]
            idx.upsert(i, doc)  # update
            live[i] = doc
        elif op < 0.95:
            i = rng.choice(list(live))
            assert idx.remove(i)
            del live[i]
        else:  # a batch with a repeated id (last wins) and an existing id
            batch_ids = [next_id, next_id + 1, next_id, rng.choice(list(live))]
            docs = [pool[rng.randrange(len(pool))] for _ in batch_ids]
            idx.upsert_many(batch_ids, docs)
            for i, d in zip(batch_ids, docs, strict=True):
                live[i] = d
            next_id += 2
        if idx.dead_postings == 0:
            compactions_seen += 1
    assert compactions_seen > 1
    fresh = LexicalIndex()
    fresh.upsert_many(list(live), list(live.values()))
    assert len(idx) == len(fresh) == len(live)
    assert idx.avgdl == pytest.approx(fresh.avgdl)
    assert np.array_equal(idx.ids(), fresh.ids())
    queries = [pool[rng.randrange(len(pool))][:4] for _ in range(60)] + [["w1"], ["w2", "w3"], ["w399"]]
    assert_same_results(idx, fresh, queries, k=15)
    for t in ["w1", "w7", "w50"]:
        assert idx.term_stats([t]) == fresh.term_stats([t])
    # compaction does not change results
    idx.compact()
    assert_same_results(idx, fresh, queries, k=15)


def test_top_k_on_a_large_collection_matches_full_sort() -> None:
    # above 8192 documents the top-k selection prunes with a sampled threshold: it must stay exact
    docs = zipf_docs(12_000, seed=9, vocab=60)
    idx = LexicalIndex()
    idx.upsert_many(range(12_000), docs)
    for q in (["w0"], ["w1", "w2", "w5"], ["w59"], [f"w{i}" for i in range(0, 60, 3)]):
        ids, scores = idx.scores(q)
        order = np.lexsort((ids, -scores))[:25]
        got = idx.search(q, 25)
        assert [i for i, _ in got] == ids[order].tolist()
        assert np.allclose([s for _, s in got], scores[order])


def test_allowed_filter_returns_k_when_k_qualify() -> None:
    docs = zipf_docs(2000, seed=4)
    ids = list(range(10, 2010))
    idx = LexicalIndex()
    idx.upsert_many(ids, docs)
    q = ["w1", "w3"]
    all_hits = [i for i, _ in idx.search(q, 2000)]
    rng = np.random.default_rng(0)
    matching_tail = np.array(all_hits[-15:])  # the lowest-scoring matches: a global top-k misses them
    allowed = np.concatenate([matching_tail, rng.integers(100_000, 200_000, 50), [matching_tail[-1]] * 3])
    res = idx.search(q, 10, allowed=allowed)
    assert len(res) == 10 and {i for i, _ in res} <= set(matching_tail.tolist())
    assert len({i for i, _ in res}) == 10  # repeated allowed ids do not repeat results
    full = dict(idx.search(q, 2000))
    assert all(full[i] == pytest.approx(s) for i, s in res)
    assert [s for _, s in res] == sorted((s for _, s in res), reverse=True)
    # fewer than k qualify: all of them
    res = idx.search(q, 10, allowed=matching_tail[:3])
    assert sorted(i for i, _ in res) == sorted(matching_tail[:3].tolist())
    assert idx.search(q, 10, allowed=np.array([], dtype=np.int64)) == []


# ------------------------------------------------------------------------------------- persistence


def test_save_load_round_trip(tmp_path) -> None:
    docs = zipf_docs(500, seed=5)
    idx = LexicalIndex(k1=1.1, b=0.6, tokenizer_id="tok/v2")
    idx.upsert_many(range(500), docs)
    for i in range(0, 60, 3):
        idx.remove(i)  # stays below the compaction fraction: dead postings are saved too
    assert idx.dead_postings > 0
    idx.save(tmp_path)
    m = read_manifest(tmp_path)
    assert (m.backend, m.kind, m.model_id, m.count) == ("bm25", "bm25", "tok/v2", 480)
    assert set(m.files) == {"postings.npz", "vocab.json"}
    back = LexicalIndex.load(tmp_path, expected_tokenizer="tok/v2")
    assert (back.k1, back.b, len(back)) == (1.1, 0.6, 480)
    queries = [d[:3] for d in docs[:40] if d]
    assert_same_results(idx, back, queries)
    assert back.matched_terms(docs[100][:2], 100) == idx.matched_terms(docs[100][:2], 100)
    # keeps working incrementally after a load
    for target in (idx, back):
        target.upsert(7_000, ["w1", "w1", "w2"])
        target.remove(100)
    assert_same_results(idx, back, queries + [["w1"]])
    with pytest.raises(IndexMismatchError, match="tok/v2"):
        LexicalIndex.load(tmp_path, expected_tokenizer="tok/v3")


def test_damaged_current_version_falls_back(tmp_path) -> None:
    idx = LexicalIndex()
    idx.upsert_many(range(50), zipf_docs(50, seed=6))
    idx.save(tmp_path)
    idx.upsert(999, ["w1"])
    idx.save(tmp_path)
    assert len(LexicalIndex.load(tmp_path)) == 51
    current = tmp_path / (tmp_path / "CURRENT").read_text().strip()
    f = current / "postings.npz"
    with open(f, "r+b") as fh:
        fh.truncate(f.stat().st_size - 10)
    assert len(LexicalIndex.load(tmp_path)) == 50
    for v in tmp_path.iterdir():
        if v.is_dir():
            (v / "vocab.json").write_text("[")
    with pytest.raises(IndexCorruptError):
        LexicalIndex.load(tmp_path)


# ------------------------------------------------------------------------------------------ threads


def test_concurrent_readers_and_writers() -> None:
    pool = zipf_docs(600, seed=8)
    idx = LexicalIndex(compact_fraction=0.2)
    idx.upsert_many(range(300), pool[:300])
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                q = pool[rng.randrange(600)][:3]
                res = idx.search(q, 10, allowed=range(0, 900, 2) if rng.random() < 0.5 else None)
                scores = [s for _, s in res]
                assert scores == sorted(scores, reverse=True) and all(s > 0 for s in scores)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def writer(lo: int, hi: int) -> None:
        try:
            for i in range(lo, hi):
                idx.upsert(i, pool[i])
                if i % 3 == 0:
                    idx.remove(i - 300)
                if i % 5 == 0:
                    idx.upsert(i - 299, pool[(i * 7) % 600])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    readers = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    writers = [
        threading.Thread(target=writer, args=(300, 450)),
        threading.Thread(target=writer, args=(450, 600)),
    ]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors[:3]
    # replay the same final state into a fresh index
    final: dict[int, list[str]] = {i: pool[i] for i in range(300)}
    for lo, hi in ((300, 450), (450, 600)):
        for i in range(lo, hi):
            final[i] = pool[i]
            if i % 3 == 0:
                final.pop(i - 300, None)
            if i % 5 == 0:
                final[i - 299] = pool[(i * 7) % 600]
    fresh = LexicalIndex()
    fresh.upsert_many(list(final), list(final.values()))
    assert np.array_equal(idx.ids(), fresh.ids())
    assert_same_results(idx, fresh, [d[:3] for d in pool[:80] if d])


# ------------------------------------------------------------------------------ character bigrams


def test_lexical_terms_are_words_plus_chinese_bigrams() -> None:
    from embeddings.text import BIGRAM_PREFIX, lexical_terms

    terms = lexical_terms("固态电池 Solid-state batteries")
    words = tokenize("固态电池 Solid-state batteries")
    assert terms[: len(words)] == words
    assert terms[len(words) :] == [BIGRAM_PREFIX + b for b in ("固态", "态电", "电池")]
    assert lexical_terms("Solid-state batteries") == tokenize("Solid-state batteries")
    assert lexical_terms("") == []
    # traditional characters and full-width forms are normalised first
    assert lexical_terms("電池") == lexical_terms("电池")


def test_bigrams_match_across_segmentation_differences() -> None:
    from embeddings.text import lexical_terms

    docs = {1: "石墨烯散热膜的卷对卷制备", 2: "锂电池正极材料回收工艺"}
    # jieba cuts the document's 石墨烯 as 石墨 + 烯 and the query's 墨烯 as one word: no word in common
    assert not set(tokenize("墨烯")) & set(tokenize(docs[1]))
    words, grams = LexicalIndex(), LexicalIndex()
    for i, text in docs.items():
        words.upsert(i, tokenize(text))
        grams.upsert(i, lexical_terms(text))
    assert words.search(tokenize("墨烯"), 5) == []
    assert [i for i, _ in grams.search(lexical_terms("墨烯"), 5)] == [1]


def test_score_ids_equals_the_scores_of_those_ids() -> None:
    docs = zipf_docs(300, seed=5)
    idx = LexicalIndex()
    idx.upsert_many(list(range(300)), docs)
    idx.remove(7)
    q = docs[3][:5] + ["never-seen"]
    ids, scores = idx.scores(q)
    full = dict(zip(ids.tolist(), scores.tolist(), strict=True))
    asked = [3, 7, 12, 1000, 150]
    got = idx.score_ids(q, asked)
    assert got.tolist() == pytest.approx([full.get(i, 0.0) for i in asked])
    assert got[0] > 0 and got[1] == 0 and got[3] == 0
    assert idx.score_ids(["never-seen"], asked).tolist() == [0.0] * 5
