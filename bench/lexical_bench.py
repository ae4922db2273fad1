"""Benchmark of the BM25 lexical index against bm25s on the same documents and queries.

Documents: N synthetic Chinese abstracts made by resampling tokenised sentences of the CSL corpus
(``/work/shared/data/research_results/csl_corpus.jsonl`` or ``--corpus``), each with a real title and a
few sentences from the same discipline; without the corpus, Zipf-distributed synthetic tokens.
Queries: "short" ones are titles of real records (their keywords when a record has none); "long" ones
are two sentences of an abstract, like an enterprise's need description.

Prints one JSON object: build time, peak RSS, single-query latency p50/p99 (all, and with an ``allowed``
filter), incremental update/delete cost, and the same latencies for bm25s plus top-10 agreement.

    python bench/lexical_bench.py --n 100000 --queries 500
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

from embeddings.lexical.bm25 import LexicalIndex  # noqa: E402

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
    path: str, n: int, n_queries: int, seed: int, terms: str = "words"
) -> tuple[list[list[str]], dict, dict]:
    """`terms`: "words" (jieba words, `tokenize`) or "service" (words plus Chinese character bigrams,
    `lexical_terms`, what the service indexes)."""
    from embeddings.text import lexical_terms
    from embeddings.text import tokenize as words

    tokenize = words if terms == "words" else lexical_terms

    rng = random.Random(seed)
    t0 = time.perf_counter()
    records = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    by_disc: dict[str, list[list[str]]] = {}
    titles: list[tuple[str, list[str]]] = []
    short_pool: list[list[str]] = []
    long_pool: list[list[str]] = []
    sent_counts = []
    for r in records:
        disc = r.get("discipline") or r.get("category") or ""
        title_tokens = tokenize(r.get("title") or "")
        titles.append((disc, title_tokens))
        sents = [s for s in _SENT.findall(r.get("abstract") or "") if s.strip()]
        sent_counts.append(len(sents))
        pool = by_disc.setdefault(disc, [])
        sent_tokens = [t for t in (tokenize(s) for s in sents) if t]
        pool.extend(sent_tokens)
        # short queries as typed in a search box: the title, else the keywords
        short = title_tokens or tokenize(" ".join(r.get("keywords") or []))
        if short:
            short_pool.append(short)
        # long queries like an enterprise's need description: two sentences of an abstract
        if sent_tokens:
            long_pool.append([t for st in sent_tokens[:2] for t in st])
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
    queries = {
        "short": rng.sample(short_pool, min(n_queries, len(short_pool))),
        "long": rng.sample(long_pool, min(n_queries, len(long_pool))),
    }
    info = {"source": path, "records": len(records), "tokenize_seconds": round(tok_s, 1)}
    return docs, queries, info


def synthetic_docs(n: int, n_queries: int, seed: int) -> tuple[list[list[str]], dict, dict]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"t{i}" for i in range(200_000)])
    lens = rng.integers(60, 220, n)
    docs = [vocab[np.minimum(rng.zipf(1.2, int(ln)), vocab.size) - 1].tolist() for ln in lens]

    def make(lo: int, hi: int) -> list[list[str]]:
        return [
            vocab[np.minimum(rng.zipf(1.3, int(rng.integers(lo, hi))), vocab.size) - 1].tolist()
            for _ in range(n_queries)
        ]

    return docs, {"short": make(3, 10), "long": make(30, 60)}, {"source": "synthetic zipf"}


def time_queries(fn, queries: list[list[str]]) -> tuple[dict, list]:
    for q in queries[:20]:  # warm-up
        fn(q)
    ts, out = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(fn(q))
        ts.append(time.perf_counter() - t)
    return pct(ts), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="documents")
    ap.add_argument("--queries", type=int, default=500, help="queries per set (short and long)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--synthetic", action="store_true", help="ignore the corpus")
    ap.add_argument("--no-bm25s", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--terms",
        choices=("words", "service"),
        default="service",
        help="index jieba words only, or what the service indexes (words plus Chinese character bigrams)",
    )
    args = ap.parse_args()

    if not args.synthetic and os.path.exists(args.corpus):
        docs, query_sets, info = corpus_docs(args.corpus, args.n, args.queries, args.seed, args.terms)
        info["terms"] = args.terms
    else:
        docs, query_sets, info = synthetic_docs(args.n, args.queries, args.seed)
    ids = np.arange(1, len(docs) + 1, dtype=np.int64) * 7  # non-contiguous record ids
    k = args.k
    out: dict = {
        "n_docs": len(docs),
        "k": k,
        "data": info,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "avg_doc_tokens": round(float(np.mean([len(d) for d in docs])), 1),
        "queries": {
            name: {"n": len(qs), "avg_tokens": round(float(np.mean([len(q) for q in qs])), 1)}
            for name, qs in query_sets.items()
        },
    }

    rss0 = rss_mb()
    t0 = time.perf_counter()
    lex = LexicalIndex()
    lex.upsert_many(ids, docs)
    out["build_seconds"] = round(time.perf_counter() - t0, 2)
    out["index_rss_mb"] = round(rss_mb() - rss0, 1)
    out["vocabulary"] = lex.vocabulary_size

    ours: dict[str, list] = {}
    rng = np.random.default_rng(1)
    allowed_sets = {
        frac: np.sort(rng.choice(ids, int(len(ids) * frac), replace=False)) for frac in (0.01, 0.2)
    }
    for name, qs in query_sets.items():
        stats, ours[name] = time_queries(lambda q: lex.search(q, k), qs)
        res = {"all": stats}
        for frac, allowed in allowed_sets.items():
            stats, got = time_queries(lambda q, a=allowed: lex.search(q, k, allowed=a), qs)
            res[f"allowed_{frac:g}"] = {**stats, "queries_with_k_results": sum(len(r) == k for r in got)}
        out[f"query_{name}"] = res

    # a write invalidates the per-term caches: the query right after one pays the full cost
    for name, qs in query_sets.items():
        ts = []
        for j, q in enumerate(qs[:200]):
            lex.upsert(int(ids[j]), docs[j])
            t = time.perf_counter()
            lex.search(q, k)
            ts.append(time.perf_counter() - t)
        out[f"query_{name}"]["right_after_a_write"] = pct(ts)

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
            t0 = time.perf_counter()
            ret = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
            ret.index(docs, show_progress=False)
            b_build = time.perf_counter() - t0
            vocab = ret.vocab_dict
            res = {"version": getattr(bm25s, "__version__", "?"), "build_seconds": round(b_build, 2)}
            for name, qs in query_sets.items():
                # bm25s rejects unknown tokens; our index ignores them
                known = [[w for w in q if w in vocab] for q in qs]
                keep = [i for i, q in enumerate(known) if q]
                stats, theirs = time_queries(
                    lambda q: ret.retrieve([q], k=k, show_progress=False, n_threads=1),
                    [known[i] for i in keep],
                )
                same_scores, overlap = 0, []
                for i, (r_ids, r_scores) in zip(keep, theirs, strict=True):
                    mine = ours[name][i]
                    t_scores = [float(s) for s in r_scores[0] if s > 0]
                    t_ids = {int(ids[j]) for j, s in zip(r_ids[0], r_scores[0], strict=True) if s > 0}
                    m_scores = [s for _, s in mine]
                    # rankings agree up to ties when the score sequences agree
                    same_scores += len(t_scores) == len(m_scores) and np.allclose(
                        t_scores, m_scores, rtol=1e-5
                    )
                    overlap.append(len(t_ids & {d for d, _ in mine}) / max(len(mine), 1))
                res[f"query_{name}"] = {
                    **stats,
                    "same_top_k_scores": f"{same_scores}/{len(keep)}",
                    "id_overlap": round(float(np.mean(overlap)), 4),
                }
            out["bm25s"] = res
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
