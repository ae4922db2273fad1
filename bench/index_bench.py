"""Benchmark of ``FaissIndex``: build time and memory, recall@k of the approximate index against exact
search, single-query latency, filtered-search latency and recall, incremental writes, save/load.

Data (``--data``):
  clustered  gaussian mixture on the unit sphere: sqrt(n)/2 normalised centres, each cluster spread
             along its own random low-rank subspace plus isotropic noise (embeddings of real text are
             clustered and have a low intrinsic dimension; pure isotropic noise is not like them).
  csl        "real-ish": documents resampled from the tokenised sentences of the CSL corpus; a document
             vector is the normalised idf-weighted sum of fixed random token vectors (a static word-bag
             encoder with random weights), so documents that share words are neighbours.

Recall tolerates ties: a returned id counts when its exact score reaches the k-th exact score (minus
1e-5), the idea of faiss' contrib/evaluation range/tie handling.

    python bench/index_bench.py --n 1000000                 # HNSW, the default above 50k records
    python bench/index_bench.py --n 200000 --kind ivf       # the IVF alternative

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faiss  # noqa: E402

from embeddings.vector.faiss_index import FaissIndex  # noqa: E402
from embeddings.vector.load import load_index  # noqa: E402

DEFAULT_CORPUS = "/work/shared/data/research_results/csl_corpus.jsonl"


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover
        return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def pct(ts: list[float]) -> dict[str, float]:
    a = np.asarray(ts) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3)}


def clustered(
    n: int,
    d: int,
    *,
    seed: int = 0,
    rank: int = 24,
    spread: float = 0.6,
    noise: float = 0.15,
    n_clusters: int | None = None,
) -> np.ndarray:
    """Normalised gaussian mixture with a low-rank spread per cluster (see module docs)."""
    rng = np.random.default_rng(seed)
    n_clusters = n_clusters or max(8, int(np.sqrt(n) / 2))
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = rng.standard_normal((n_clusters, rank, d)).astype(np.float32) / np.sqrt(d)
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        c = rng.integers(0, n_clusters, m)
        z = rng.standard_normal((m, rank)).astype(np.float32) * spread
        x = centres[c] + rng.standard_normal((m, d)).astype(np.float32) * (noise / np.sqrt(d))
        order = np.argsort(c, kind="stable")
        bounds = np.flatnonzero(np.diff(c[order])) + 1
        for grp in np.split(order, bounds):
            x[grp] += z[grp] @ bases[c[grp[0]]]
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s : s + m] = x
    return out


def csl_vectors(n: int, d: int, *, seed: int = 0, corpus: str = DEFAULT_CORPUS) -> np.ndarray:
    """Resampled CSL documents embedded with random static token vectors (see module docs)."""
    import re

    import scipy.sparse as sp

    from embeddings.text import tokenize

    rng = np.random.default_rng(seed)
    sent_re = re.compile(r"[^。；;！？!?]+[。；;！？!?]?")
    vocab: dict[str, int] = {}
    rows, cols = [], []
    n_sent = 0
    for line in open(corpus, encoding="utf-8"):
        if not line.strip():
            continue
        r = json.loads(line)
        for s in [r.get("title", "")] + sent_re.findall(r.get("abstract", "")):
            toks = tokenize(s)
            if not toks:
                continue
            for t in toks:
                rows.append(n_sent)
                cols.append(vocab.setdefault(t, len(vocab)))
            n_sent += 1
    S = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_sent, len(vocab)))
    df = np.bincount(S.indices, minlength=len(vocab))
    idf = np.log1p(n_sent / (1.0 + df)).astype(np.float32)
    W = rng.standard_normal((len(vocab), d)).astype(np.float32) * idf[:, None]
    SW = np.asarray(S @ W, dtype=np.float32)  # sentence vectors
    # a document: 1 + ~5 sentences, mostly contiguous (same abstract), sometimes mixed
    per_doc = np.clip(rng.poisson(5, n), 1, 12)
    start = rng.integers(0, n_sent, n)
    ridx = np.repeat(np.arange(n), per_doc)
    offs = np.arange(per_doc.sum()) - np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
    cidx = (np.repeat(start, per_doc) + offs) % n_sent
    mix = rng.random(cidx.size) < 0.2
    cidx[mix] = rng.integers(0, n_sent, int(mix.sum()))
    D = sp.csr_matrix((np.ones(cidx.size, np.float32), (ridx, cidx)), shape=(n, n_sent))
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):
        x = np.asarray(D[s : s + 100_000] @ SW, dtype=np.float32)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        out[s : s + x.shape[0]] = x
    return out


def tie_recall(D_approx: np.ndarray, I_approx: np.ndarray, D_exact: np.ndarray, k: int) -> float:
    thr = D_exact[:, k - 1 : k] - 1e-5
    hits = ((D_approx[:, :k] >= thr) & (I_approx[:, :k] >= 0)).sum(axis=1)
    return float(np.minimum(hits, k).mean() / k)


def exact_knn(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    faiss.cvar.distance_compute_blas_threshold = 1
    return faiss.knn(q, x, k, metric=faiss.METRIC_INNER_PRODUCT)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--latency-queries", type=int, default=500)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--data", choices=["clustered", "csl"], default="clustered")
    ap.add_argument("--kind", choices=["auto", "hnsw", "ivf", "flat"], default="auto")
    ap.add_argument("--m", type=int, default=32, help="HNSW M")
    ap.add_argument("--ef-construction", type=int, default=80)
    ap.add_argument("--ef-search", type=int, default=None, help="default: the FaissIndex default")
    ap.add_argument("--sweep", default="32,64,96,128,192", help="ef_search (HNSW) / nprobe (IVF) values")
    ap.add_argument("--nlist", type=int, default=None)
    ap.add_argument("--filters", default="1000,10000,50000,200000", help="allowed-set sizes")
    ap.add_argument("--writes", type=int, default=200, help="single upserts/removes to time")
    ap.add_argument("--save", action="store_true", help="also time save() and load_index()")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    k = args.k
    out: dict = {
        "n": args.n,
        "dim": args.dim,
        "data": args.data,
        "k": k,
        "kind": args.kind,
        "threads": faiss.omp_get_max_threads(),
        "faiss": faiss.__version__,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }

    t0 = time.perf_counter()
    if args.data == "csl":
        x = csl_vectors(args.n + args.queries, args.dim, seed=args.seed)
    else:
        x = clustered(args.n + args.queries, args.dim, seed=args.seed)
    rng = np.random.default_rng(args.seed + 1)
    perm = rng.permutation(x.shape[0])
    q = np.ascontiguousarray(x[perm[: args.queries]])
    x = np.ascontiguousarray(x[perm[args.queries :]])
    ids = np.arange(args.n, dtype=np.int64) * 3 + 1000  # sparse-ish record ids
    out["generate_seconds"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    D_exact, I_exact = exact_knn(q, x, k)
    out["ground_truth_seconds"] = round(time.perf_counter() - t0, 1)
    out["nn_similarity"] = {
        "top1_mean": round(float(D_exact[:, 0].mean()), 4),
        f"top{k}_mean": round(float(D_exact[:, k - 1].mean()), 4),
    }

    kwargs = dict(
        kind=args.kind,
        hnsw_m=args.m,
        ef_construction=args.ef_construction,
        background=False,
        model_id=f"bench-{args.data}",
        ivf_nlist=args.nlist,
    )
    if args.ef_search:
        kwargs["ef_search"] = args.ef_search
    rss0 = rss_mb()
    t0 = time.perf_counter()
    index = FaissIndex(args.dim, **kwargs)
    index.upsert(ids, x)
    out["build_seconds"] = round(time.perf_counter() - t0, 1)
    out["index_kind"] = index.current_kind
    out["index_memory_mb"] = round(index.memory_bytes() / 2**20, 1)
    out["rss_growth_mb"] = round(rss_mb() - rss0, 1)

    # exact single-query baseline (numpy mat-vec over all vectors)
    nl = min(args.latency_queries, 100)
    ts = []
    for i in range(nl):
        t = time.perf_counter()
        s = x @ q[i]
        np.argpartition(-s, k)[:k]
        ts.append(time.perf_counter() - t)
    out["exact_single_query"] = pct(ts)

    def sweep_param(value: int) -> None:
        if index.current_kind == "hnsw":
            index.ef_search = value
        elif index.current_kind == "ivf":
            index.ivf_nprobe = value

    sweep = []
    for v in [int(s) for s in args.sweep.split(",") if s] or [0]:
        if v:
            sweep_param(v)
        D, lab = index.search(q, k)
        rec = tie_recall(D, lab, D_exact, k)
        ts = []
        for i in range(args.latency_queries):
            t = time.perf_counter()
            index.search(q[i % q.shape[0] : i % q.shape[0] + 1], k)
            ts.append(time.perf_counter() - t)
        sweep.append({"param": v, f"recall@{k}": round(rec, 4), **pct(ts)})
    out["sweep"] = sweep
    out["sweep_param"] = {"hnsw": "ef_search", "ivf": "nprobe"}.get(index.current_kind, "-")
    # settle on the smallest swept value reaching 0.98 (else the largest)
    good = [s for s in sweep if s[f"recall@{k}"] >= 0.98]
    chosen = good[0] if good else sweep[-1]
    if chosen["param"]:
        sweep_param(chosen["param"])
    out["chosen"] = chosen

    # filtered search: latency, strategy, recall vs exact-over-allowed, queries with k results
    filt = []
    nf = min(200, q.shape[0])
    for size in [int(s) for s in args.filters.split(",") if s]:
        if size >= args.n:
            continue
        allowed = np.sort(rng.choice(ids, size, replace=False))
        rows = (allowed - 1000) // 3
        De, _ = exact_knn(q[:nf], np.ascontiguousarray(x[rows]), k)
        ts, recs, full, paths = [], [], 0, set()
        for i in range(nf):
            t = time.perf_counter()
            D, lab = index.search(q[i : i + 1], k, allowed=allowed)
            ts.append(time.perf_counter() - t)
            paths.add(index.last_search_path)
            recs.append(tie_recall(D, lab, De[i : i + 1], k))
            full += int((lab >= 0).sum() == k)
            assert np.isin(lab[lab >= 0], allowed).all()
        filt.append(
            {
                "allowed": size,
                "selectivity": round(size / args.n, 4),
                "path": sorted(paths),
                **pct(ts),
                f"recall@{k}": round(float(np.mean(recs)), 4),
                "queries_with_k": f"{full}/{nf}",
            }
        )
    out["filtered"] = filt

    # incremental writes on the big index
    w = min(args.writes, args.n)
    # edits of existing records: a record's vector moved a little (same distribution as the data)
    new_vecs = x[rng.choice(args.n, w, replace=False)] + rng.standard_normal((w, args.dim)).astype(
        np.float32
    ) * (0.3 / np.sqrt(args.dim))
    new_vecs = np.ascontiguousarray(
        new_vecs / np.linalg.norm(new_vecs, axis=1, keepdims=True), dtype=np.float32
    )
    ts_up, ts_new, ts_rm = [], [], []
    for j in range(w):
        t = time.perf_counter()
        index.upsert(ids[j : j + 1], new_vecs[j : j + 1])  # replace an existing record
        ts_up.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.upsert(np.array([10**12 + j]), new_vecs[j : j + 1])  # a new record
        ts_new.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.remove(np.array([10**12 + j]))
        ts_rm.append(time.perf_counter() - t)
    out["writes"] = {
        "replace": pct(ts_up),
        "insert": pct(ts_new),
        "remove": pct(ts_rm),
        "tombstones": index.tombstones,
    }
    D, lab = index.search(new_vecs[:50], 1)
    out["writes"]["replaced_found_top1"] = float((lab[:, 0] == ids[:50]).mean())

    if args.save:
        tmp = tempfile.mkdtemp(prefix="index-bench-")
        try:
            t = time.perf_counter()
            index.save(tmp)
            out["save_seconds"] = round(time.perf_counter() - t, 1)
            out["saved_mb"] = round(
                sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20, 1
            )
            del index
            t = time.perf_counter()
            index = load_index(
                tmp, expected_model_id=f"bench-{args.data}", expected_dimension=args.dim, background=False
            )
            out["load_seconds"] = round(time.perf_counter() - t, 1)
            D, lab = index.search(q, k)
            out[f"recall@{k}_after_load"] = round(tie_recall(D, lab, D_exact, k), 4)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
