"""Benchmark of the BM25 lexical index against bm25s on the same documents and queries.

Documents: N synthetic Chinese abstracts made by resampling tokenised sentences of the CSL corpus
(``/work/shared/data/research_results/csl_corpus.jsonl`` or ``--corpus``), each with a real title and a
few sentences from the same discipline; without the corpus, Zipf-distributed synthetic tokens.
Queries: titles of real records (tokenised), as the service gets them.

Prints one JSON object: build time, peak RSS, single-query latency p50/p99 (all, and with an ``allowed``
filter), incremental update/delete cost, and the same latencies for bm25s plus top-10 agreement.

    python bench/lexical_bench.py --n 100000 --queries 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from matcher.lexical import LexicalIndex  # noqa: E402

DEFAULT_CORPUS = "/work/shared/data/research_results/csl_corpus.jsonl"
_SENT = re.compile(r"[^。；;！？!?]+[。；;！？!?]?")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover
        return float("nan")


def pct(ts: list[float]) -> dict[str, float]:
    a = np.asarray(ts) * 1000
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "mean_ms": round(float(a.mean()), 3),
    }


def corpus_docs(
    path: str, n: int, n_queries: int, seed: int
) -> tuple[list[list[str]], list[list[str]], dict]:
    from embeddings.text import tokenize

    rng = random.Random(seed)
    t0 = time.perf_counter()
    records = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    by_disc: dict[str, list[list[str]]] = {}
    titles: list[tuple[str, list[str]]] = []
    sent_counts = []
    for r in records:
        disc = r.get("discipline") or r.get("category") or ""
        title_tokens = tokenize(r.get("title", ""))
        titles.append((disc, title_tokens))
        sents = [s for s in _SENT.findall(r.get("abstract", "")) if s.strip()]
        sent_counts.append(len(sents))
        pool = by_disc.setdefault(disc, [])
        for s in sents:
            toks = tokenize(s)
            if toks:
                pool.append(toks)
    tok_s = time.perf_counter() - t0
    docs = []
    for _ in range(n):
        disc, title = titles[rng.randrange(len(titles))]
        pool = by_disc.get(disc) or next(iter(by_disc.values()))
        k = max(1, sent_counts[rng.randrange(len(sent_counts))])
        doc = list(title)
        for _ in range(k):
            doc.extend(pool[rng.randrange(len(pool))])
        docs.append(doc)
    queries = [t for _, t in rng.sample(titles, min(n_queries, len(titles))) if t]
    info = {"source": path, "records": len(records), "tokenize_seconds": round(tok_s, 1)}
    return docs, queries, info


def synthetic_docs(n: int, n_queries: int, seed: int) -> tuple[list[list[str]], list[list[str]], dict]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"t{i}" for i in range(200_000)])
    lens = rng.integers(60, 220, n)
    docs = [vocab[np.minimum(rng.zipf(1.2, int(ln)), vocab.size) - 1].tolist() for ln in lens]
    queries = [
        vocab[np.minimum(rng.zipf(1.3, int(rng.integers(3, 10))), vocab.size) - 1].tolist()
        for _ in range(n_queries)
    ]
    return docs, queries, {"source": "synthetic zipf"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="documents")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--synthetic", action="store_true", help="ignore the corpus")
    ap.add_argument("--no-bm25s", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    if not args.synthetic and os.path.exists(args.corpus):
        docs, queries, info = corpus_docs(args.corpus, args.n, args.queries, args.seed)
    else:
        docs, queries, info = synthetic_docs(args.n, args.queries, args.seed)
    ids = np.arange(1, len(docs) + 1, dtype=np.int64) * 7  # non-contiguous record ids
    out: dict = {
        "n_docs": len(docs),
        "n_queries": len(queries),
        "k": args.k,
        "data": info,
        "avg_doc_tokens": round(float(np.mean([len(d) for d in docs])), 1),
        "avg_query_tokens": round(float(np.mean([len(q) for q in queries])), 1),
    }

    rss0 = rss_mb()
    t0 = time.perf_counter()
    lex = LexicalIndex()
    lex.upsert_many(ids, docs)
    out["build_seconds"] = round(time.perf_counter() - t0, 2)
    out["index_rss_mb"] = round(rss_mb() - rss0, 1)
    out["vocabulary"] = lex.vocabulary_size

    k = args.k
    for q in queries[:20]:
        lex.search(q, k)
    ts = []
    ours = []
    for q in queries:
        t = time.perf_counter()
        ours.append(lex.search(q, k))
        ts.append(time.perf_counter() - t)
    out["query"] = pct(ts)

    rng = np.random.default_rng(1)
    for frac in (0.01, 0.2):
        allowed = np.sort(rng.choice(ids, int(len(ids) * frac), replace=False))
        ts, full = [], 0
        for q in queries:
            t = time.perf_counter()
            r = lex.search(q, k, allowed=allowed)
            ts.append(time.perf_counter() - t)
            full += len(r) == k
        out[f"query_allowed_{frac:g}"] = {**pct(ts), "queries_with_k_results": full}

    # incremental writes on the built index
    extra = docs[:500]
    t = time.perf_counter()
    for j, d in enumerate(extra):
        lex.upsert(int(ids[-1]) + 7 * (j + 1), d)
    t_add = (time.perf_counter() - t) / len(extra)
    t = time.perf_counter()
    for j, d in enumerate(extra):
        lex.upsert(int(ids[j]), d[::-1])
    t_upd = (time.perf_counter() - t) / len(extra)
    t = time.perf_counter()
    for j in range(len(extra)):
        lex.remove(int(ids[-1]) + 7 * (j + 1))
    t_rm = (time.perf_counter() - t) / len(extra)
    out["single_write_ms"] = {
        "add": round(t_add * 1e3, 3),
        "update": round(t_upd * 1e3, 3),
        "remove": round(t_rm * 1e3, 3),
    }
    t = time.perf_counter()
    lex.compact()
    out["compact_seconds"] = round(time.perf_counter() - t, 2)

    if not args.no_bm25s:
        try:
            import bm25s
        except ImportError:  # pragma: no cover
            bm25s = None
        if bm25s is not None:
            # bm25s has no update: compare on the original documents, rebuilt fresh on both sides
            lex = LexicalIndex()
            lex.upsert_many(ids, docs)
            ours = [lex.search(q, k) for q in queries]
            t0 = time.perf_counter()
            ret = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
            ret.index(docs, show_progress=False)
            b_build = time.perf_counter() - t0
            vocab = ret.vocab_dict
            ts, agree, score_err = [], [], 0.0
            for q, mine in zip(queries, ours, strict=True):
                qq = [w for w in q if w in vocab]
                if not qq:
                    continue
                t = time.perf_counter()
                res, scores = ret.retrieve([qq], k=k, show_progress=False, n_threads=1)
                ts.append(time.perf_counter() - t)
                theirs = {int(ids[i]) for i, s in zip(res[0], scores[0], strict=True) if s > 0}
                mine_ids = {i for i, _ in mine}
                if mine and theirs:
                    # tie-tolerant: documents scoring at least our k-th score
                    kth = mine[-1][1]
                    agree.append(
                        sum(
                            1
                            for i, s in zip(res[0], scores[0], strict=True)
                            if s > 0 and (int(ids[i]) in mine_ids or s <= kth * (1 + 1e-5))
                        )
                        / max(len(theirs), 1)
                    )
                    score_err = max(score_err, abs(float(scores[0][0]) - mine[0][1]) / mine[0][1])
            out["bm25s"] = {
                "version": getattr(bm25s, "__version__", "?"),
                "build_seconds": round(b_build, 2),
                "query": pct(ts),
                "top_k_agreement": round(float(np.mean(agree)), 4),
                "max_rel_top1_score_diff": float(f"{score_err:.2e}"),
            }
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
