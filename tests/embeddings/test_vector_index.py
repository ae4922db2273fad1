"""FaissIndex against the ExactIndex oracle: recall, upserts, deletes, filters, persistence, crashes, threads."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import embeddings.persist
import embeddings.vector.faiss_index
from embeddings.encoders.base import VectorIndex
from embeddings.persist import IndexCorruptError, IndexManifest, IndexMismatchError, read_manifest
from embeddings.vector.arrays import unique_slots
from embeddings.vector.exact import ExactIndex
from embeddings.vector.faiss_index import FaissIndex
from embeddings.vector.load import load_index

D = 32
N = 3000
REPO = Path(__file__).resolve().parents[2]  # the checkout whose code the subprocess imports


def clustered(n: int, d: int = D, *, seed: int = 0, n_clusters: int = 40) -> np.ndarray:
    """Normalised gaussian mixture with a low-rank spread per cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    bases = rng.standard_normal((n_clusters, 6, d)).astype(np.float32) / np.sqrt(d)
    c = rng.integers(0, n_clusters, n)
    z = rng.standard_normal((n, 6)).astype(np.float32) * 0.7
    x = (
        centres[c]
        + np.einsum("nr,nrd->nd", z, bases[c])
        + rng.standard_normal((n, d)).astype(np.float32) * 0.05
    )
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def tie_recall(D_approx: np.ndarray, I_approx: np.ndarray, D_exact: np.ndarray, k: int) -> float:
    """Share of the k returned results whose score reaches the exact k-th score (ties count as hits)."""
    thr = D_exact[:, k - 1 : k] - 1e-5
    hits = ((D_approx[:, :k] >= thr) & (I_approx[:, :k] >= 0)).sum(axis=1)
    return float(np.minimum(hits, k).mean() / k)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = clustered(N + 100, seed=1)
    ids = np.arange(N, dtype=np.int64) * 5 + 11  # not slot-like
    return ids, x[:N], x[N:]


@pytest.fixture(scope="module")
def oracle(data) -> ExactIndex:
    ids, x, _ = data
    ex = ExactIndex(D)
    ex.upsert(ids, x)
    return ex


def make(kind: str, **kw) -> FaissIndex:
    kw.setdefault("background", False)
    kw.setdefault("hnsw_m", 16)  # small graphs build fast; the defaults are exercised by bench/
    kw.setdefault("ef_construction", 40)
    if kind == "ivf":
        kw.setdefault("ivf_nprobe", 16)
    return FaissIndex(D, kind=kind, model_id="test-model", **kw)


# ---------------------------------------------------------------------------------------------- oracle


def test_exact_index_basics() -> None:
    ex = ExactIndex(3)
    assert isinstance(ex, VectorIndex)
    ex.upsert(np.array([7, 8, 9]), np.eye(3, dtype=np.float32))
    D_, lab = ex.search(np.array([[1.0, 0.2, 0.0]], dtype=np.float32), 5)
    assert lab[0].tolist() == [7, 8, 9, -1, -1]
    assert np.isneginf(D_[0, 3:]).all()
    ex.upsert(np.array([7]), np.array([[0, 0, 1.0]], dtype=np.float32))  # replace
    ex.remove(np.array([8, 12345]))
    assert len(ex) == 2 and ex.ids().tolist() == [7, 9]
    D_, lab = ex.search(np.array([[0, 0, 1.0]], dtype=np.float32), 2)
    assert sorted(lab[0].tolist()) == [7, 9] and np.allclose(D_[0], 1.0)
    _, lab = ex.search(np.array([[0, 0, 1.0]], dtype=np.float32), 3, allowed=np.array([9, 8, 100]))
    assert lab[0].tolist() == [9, -1, -1]


def test_unique_slots() -> None:
    a = np.array([5, 3, 5, 0, 9, 3])
    assert unique_slots(a, 10).tolist() == [0, 3, 5, 9]
    assert unique_slots(a, 10_000).tolist() == [0, 3, 5, 9]


# ------------------------------------------------------------------------------------------ exactness


def test_flat_is_exact(data, oracle) -> None:
    ids, x, q = data
    fi = make("flat")
    assert isinstance(fi, VectorIndex)
    fi.upsert(ids, x)
    De, Ie = oracle.search(q, 10)
    D1, I1 = fi.search(q[:1], 10)  # numpy path
    assert fi.last_search_path == "flat-numpy"
    assert np.array_equal(I1, Ie[:1]) and np.allclose(D1, De[:1], atol=1e-5)
    Db, Ib = fi.search(q, 10)  # batched faiss path
    assert tie_recall(Db, Ib, De, 10) == 1.0
    assert np.allclose(Db, De, atol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall(kind, data, oracle) -> None:
    ids, x, q = data
    fi = make(kind)
    fi.upsert(ids[:1000], x[:1000])  # grow incrementally, not only by bulk load
    for a in range(1000, N, 500):
        fi.upsert(ids[a : a + 500], x[a : a + 500])
    assert fi.current_kind == kind and len(fi) == N
    De, _ = oracle.search(q, 10)
    Da, Ia = fi.search(q, 10)
    assert tie_recall(Da, Ia, De, 10) >= 0.95
    assert np.isin(Ia, ids).all()
    # single-query path agrees with the batched one
    D1, I1 = fi.search(q[3], 10)
    assert tie_recall(D1, I1, De[3:4], 10) >= 0.9


def test_auto_switches_both_ways(data, oracle) -> None:
    ids, x, q = data
    fi = make("auto", approximate_threshold=1500)
    for a in range(0, N, 250):
        fi.upsert(ids[a : a + 250], x[a : a + 250])
        assert fi.current_kind == ("flat" if a + 250 < 1500 else "hnsw")
    De, _ = oracle.search(q, 10)
    assert tie_recall(*fi.search(q, 10), De, 10) >= 0.95
    fi.remove(ids[: N - 700])  # below half the threshold: back to exact
    assert fi.current_kind == "flat" and len(fi) == 700 and fi.tombstones == 0
    small = ExactIndex(D)
    small.upsert(ids[N - 700 :], x[N - 700 :])
    assert np.array_equal(fi.search(q, 10)[1], small.search(q, 10)[1])


def test_bulk_load_goes_straight_to_approximate(data) -> None:
    ids, x, _ = data
    fi = make("auto", approximate_threshold=1000)
    fi.upsert(ids, x)
    assert fi.current_kind == "hnsw" and len(fi) == N


def test_background_switch_serves_during_rebuild(data, oracle) -> None:
    ids, x, q = data
    fi = FaissIndex(D, approximate_threshold=2000, background=True)
    fi.upsert(ids[:1999], x[:1999])
    assert fi.current_kind == "flat"
    fi.upsert(ids[1999:2000], x[1999:2000])  # crosses the threshold: rebuild starts in the background
    for a in range(2000, N, 100):  # writes during the rebuild are journaled and replayed
        fi.upsert(ids[a : a + 100], x[a : a + 100])
        fi.search(q[:2], 5)
    fi.remove(ids[:10])
    assert fi.wait_for_rebuild(60)
    assert fi.current_kind == "hnsw" and len(fi) == N - 10
    assert set(fi.ids().tolist()) == set(ids[10:].tolist())
    De, _ = oracle.search(q, 10, allowed=ids[10:])
    assert tie_recall(*fi.search(q, 10), De, 10) >= 0.95


# ------------------------------------------------------------------------------------ updates/deletes


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_upsert_replaces_and_remove_removes(kind, data) -> None:
    ids, x, q = data
    fi = make(kind)
    fi.upsert(ids, x)
    target = ids[:20]
    fi.upsert(target, q[:20])  # move 20 records onto the query vectors
    assert len(fi) == N
    assert np.allclose(fi.get_vectors(target), q[:20])
    D_, lab = fi.search(q[:20], 1)
    assert lab[:, 0].tolist() == target.tolist() and np.allclose(D_[:, 0], 1.0, atol=1e-5)
    # searching with their old vectors: wherever they still show up, it is with the new vector's score
    D_, lab = fi.search(x[:20], 10)
    for j, t in enumerate(target.tolist()):
        hit = lab[j] == t
        assert not hit.any() or np.allclose(D_[j][hit], q[j] @ x[j], atol=1e-5)
    fi.remove(np.concatenate([target, [99_999_999]]))  # unknown ids are ignored
    assert len(fi) == N - 20 and not np.isin(target, fi.ids()).any()
    _, lab = fi.search(q[:20], 10)
    assert not np.isin(target, lab).any()
    _, lab = fi.search(q[:20], 5, allowed=target)  # allowed only removed ids: nothing qualifies
    assert (lab == -1).all()
    for t in target[:3]:
        assert t not in fi
    assert ids[500] in fi


def test_duplicate_ids_in_a_batch_last_wins() -> None:
    fi = make("hnsw")
    v = np.eye(D, dtype=np.float32)
    fi.upsert(np.array([5, 6, 5]), v[:3])
    assert len(fi) == 2 and np.allclose(fi.get_vectors([5]), v[2])


def test_validation() -> None:
    fi = make("flat")
    with pytest.raises(ValueError):
        fi.upsert(np.array([1]), np.zeros((1, D + 1), np.float32))
    with pytest.raises(ValueError):
        fi.upsert(np.array([1, 2]), np.zeros((1, D), np.float32))
    with pytest.raises(ValueError):
        fi.upsert(np.array([1]), np.full((1, D), np.nan, np.float32))
    with pytest.raises(ValueError):
        FaissIndex(D, kind="lsh")
    D_, lab = fi.search(np.ones(D, np.float32), 3)
    assert lab.tolist() == [[-1, -1, -1]] and np.isneginf(D_).all()


def test_sparse_ids_and_negative_ids() -> None:
    fi = make("flat")
    ids = np.array([7, 0, 10**15, 2**62, 3])
    v = clustered(5, seed=3)
    fi.upsert(ids, v)
    _, lab = fi.search(v, 1)
    assert lab[:, 0].tolist() == ids.tolist()
    _, lab = fi.search(v[2], 5, allowed=np.array([10**15, 2**62, -1]))
    assert sorted(lab[0, :2].tolist()) == [10**15, 2**62]
    fi.remove(np.array([2**62, -3]))
    assert sorted(fi.ids().tolist()) == [0, 3, 7, 10**15]
    with pytest.raises(ValueError, match="non-negative"):  # -1 is the padding id
        fi.upsert(np.array([-5]), v[:1])


def test_tombstones_compacted(data, oracle) -> None:
    ids, x, q = data
    fi = make("hnsw")  # no background thread: compaction happens on save() / compact()
    fi.upsert(ids, x)
    fi.remove(ids[:1200])
    assert fi.tombstones == 1200 and len(fi) == N - 1200
    De, _ = oracle.search(q, 10, allowed=ids[1200:])
    Da, Ia = fi.search(q, 10)
    assert not np.isin(Ia, ids[:1200]).any() and tie_recall(Da, Ia, De, 10) >= 0.95
    fi.compact()
    assert fi.tombstones == 0 and len(fi) == N - 1200
    assert tie_recall(*fi.search(q, 10), De, 10) >= 0.95

    bg = FaissIndex(D, kind="hnsw", background=True)
    bg.upsert(ids, x)
    bg.remove(ids[:1200])  # > 20% tombstones: background compaction
    assert bg.wait_for_rebuild(60)
    assert bg.tombstones == 0 and len(bg) == N - 1200


# ------------------------------------------------------------------------------------------ filters


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_selective_filter_is_exact(kind, data, oracle) -> None:
    ids, x, q = data
    fi = make(kind)
    fi.upsert(ids, x)
    rng = np.random.default_rng(5)
    allowed = rng.choice(ids, 37, replace=False)
    De, Ie = oracle.search(q, 10, allowed=allowed)
    Da, Ia = fi.search(q, 10, allowed=allowed)
    assert fi.last_search_path == "exact-subset"
    assert np.array_equal(Ia, Ie) and np.allclose(Da, De, atol=1e-5)
    # fewer than k qualify: all of them, then padding
    few = np.concatenate([allowed[:4], [-77, 10**12]])  # unknown ids are ignored
    _, lab = fi.search(q, 10, allowed=few)
    assert ((lab >= 0).sum(axis=1) == 4).all() and (lab[:, 4:] == -1).all()
    assert all(set(row[:4]) == set(allowed[:4].tolist()) for row in lab.tolist())


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_broad_filter_uses_selector(kind, data, oracle) -> None:
    ids, x, q = data
    fi = make(kind, exact_cutoff=100, min_selectivity=0.05)
    fi.upsert(ids, x)
    allowed = ids[::3]
    De, _ = oracle.search(q, 10, allowed=allowed)
    Da, Ia = fi.search(q, 10, allowed=allowed)
    assert fi.last_search_path == "ann-filtered"
    assert np.isin(Ia, allowed).all() and tie_recall(Da, Ia, De, 10) >= 0.95


def test_short_filtered_results_fall_back_to_exact(data) -> None:
    ids, x, q = data
    # force the selector path even for a tiny allowed set, with a narrow beam: the graph search
    # cannot find 10 of 12 scattered ids, the exact fallback must fill the rows
    fi = make("hnsw", exact_cutoff=0, min_selectivity=0.0, ef_search=10)
    fi.upsert(ids, x)
    allowed = np.random.default_rng(2).choice(ids, 12, replace=False)
    D_, lab = fi.search(q, 10, allowed=allowed)
    assert fi.last_search_path == "ann-filtered"
    assert ((lab >= 0).sum(axis=1) == 10).all() and np.isin(lab, allowed).all()


# ------------------------------------------------------------------------------------- persistence


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip(kind, data, tmp_path) -> None:
    ids, x, q = data
    fi = make(kind)
    fi.upsert(ids, x)
    fi.remove(ids[:100])  # tombstones survive the round trip
    fi.save(str(tmp_path))
    m = read_manifest(tmp_path)
    assert isinstance(m, IndexManifest)
    assert (m.model_id, m.dimension, m.kind, m.count, m.backend) == ("test-model", D, kind, N - 100, "faiss")
    assert {"faiss", "numpy", "python"} <= set(m.library_versions) and m.created_at
    assert "index.faiss" in m.files and len(m.id_checksum) == 64
    back = load_index(tmp_path, expected_model_id="test-model", expected_dimension=D, background=False)
    assert isinstance(back, FaissIndex) and back.current_kind == kind
    assert len(back) == N - 100 and np.array_equal(back.ids(), fi.ids())
    D1, I1 = fi.search(q, 10)
    D2, I2 = back.search(q, 10)
    assert np.array_equal(I1, I2) and np.allclose(D1, D2)
    # still incremental after loading
    back.upsert(ids[:1], q[:1])
    assert back.search(q[:1], 1)[1][0, 0] == ids[0]


def test_exact_index_save_load(data, tmp_path) -> None:
    ids, x, q = data
    ex = ExactIndex(D, model_id="m")
    ex.upsert(ids[:300], x[:300])
    ex.save(str(tmp_path))
    back = load_index(tmp_path, expected_model_id="m", expected_dimension=D)
    assert isinstance(back, ExactIndex)
    assert np.array_equal(back.search(q, 5)[1], ex.search(q, 5)[1])


def test_manifest_mismatch_refused(data, tmp_path) -> None:
    ids, x, _ = data
    fi = make("flat")
    fi.upsert(ids[:50], x[:50])
    fi.save(str(tmp_path))
    with pytest.raises(IndexMismatchError, match="model 'test-model' \\(expected 'bge-m3'\\)") as exc:
        load_index(tmp_path, expected_model_id="bge-m3", expected_dimension=D)
    assert isinstance(exc.value, ValueError) and "\n" not in str(exc.value)
    with pytest.raises(IndexMismatchError, match=f"dimension {D} \\(expected 768\\)"):
        load_index(tmp_path, expected_model_id="test-model", expected_dimension=768)
    with pytest.raises(FileNotFoundError):
        load_index(tmp_path / "nothing", expected_model_id="x", expected_dimension=D)


def _two_versions(data, tmp_path) -> FaissIndex:
    ids, x, _ = data
    fi = make("hnsw")
    fi.upsert(ids[:500], x[:500])
    fi.save(str(tmp_path))  # version 1: 500 records
    fi.upsert(ids[500:800], x[500:800])
    return fi


def test_crash_before_pointer_keeps_previous_version(data, tmp_path, monkeypatch) -> None:
    fi = _two_versions(data, tmp_path)
    real_replace = os.replace

    def die(src, dst, *a, **kw):  # the process dies right before the pointer is swapped
        if str(dst).endswith("CURRENT"):
            raise KeyboardInterrupt("killed")
        return real_replace(src, dst, *a, **kw)

    monkeypatch.setattr(embeddings.persist.os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        fi.save(str(tmp_path))
    monkeypatch.undo()
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("v")]) == 2  # new files are there
    back = load_index(tmp_path, expected_model_id="test-model", expected_dimension=D)
    assert len(back) == 500


def test_crash_while_writing_files_keeps_previous_version(data, tmp_path, monkeypatch) -> None:
    fi = _two_versions(data, tmp_path)

    def half_written(index, path):  # a torn write, then the process dies
        Path(path).write_bytes(b"\x00" * 100)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(embeddings.vector.faiss_index.faiss, "write_index", half_written)
    with pytest.raises(KeyboardInterrupt):
        fi.save(str(tmp_path))
    monkeypatch.undo()
    assert len(load_index(tmp_path, expected_model_id="test-model", expected_dimension=D)) == 500
    fi.save(str(tmp_path))  # the next save works and cleans up
    assert len(load_index(tmp_path, expected_model_id="test-model", expected_dimension=D)) == 800
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_truncated_file_falls_back_to_previous_version(data, tmp_path, caplog) -> None:
    fi = _two_versions(data, tmp_path)
    fi.save(str(tmp_path))  # version 2: 800 records
    current = tmp_path / (tmp_path / "CURRENT").read_text().strip()
    blob = current / "index.faiss"
    with open(blob, "r+b") as fh:
        fh.truncate(blob.stat().st_size // 2)
    with caplog.at_level("WARNING"):
        back = load_index(tmp_path, expected_model_id="test-model", expected_dimension=D)
    assert len(back) == 500 and "unusable" in caplog.text
    # flipped bytes of the same size are caught by the checksum
    for v in [p for p in tmp_path.iterdir() if p.name.startswith("v")]:
        f = v / "slot_ids.npy"
        raw = bytearray(f.read_bytes())
        raw[-1] ^= 0xFF
        f.write_bytes(bytes(raw))
    with pytest.raises(IndexCorruptError):
        load_index(tmp_path, expected_model_id="test-model", expected_dimension=D)


def test_bad_pointer_and_bad_manifest(data, tmp_path) -> None:
    fi = _two_versions(data, tmp_path)
    fi.save(str(tmp_path))
    (tmp_path / "CURRENT").write_text("v-does-not-exist\n")
    assert len(load_index(tmp_path, expected_model_id="test-model", expected_dimension=D)) == 800
    newest = sorted(p for p in tmp_path.iterdir() if p.name.startswith("v"))[-1]
    (newest / "manifest.json").write_text('{"model_id": "test-mo')  # torn manifest
    assert len(load_index(tmp_path, expected_model_id="test-model", expected_dimension=D)) == 500


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    sys.path.insert(0, {repo!r})
    from embeddings.vector.faiss_index import FaissIndex
    rng = np.random.default_rng(0)
    fi = FaissIndex(16, kind="hnsw", model_id="kill", background=False)
    n = 0
    while True:
        v = rng.standard_normal((400, 16)).astype(np.float32)
        fi.upsert(np.arange(n, n + 400), v / np.linalg.norm(v, axis=1, keepdims=True))
        n += 400
        print("saving", n, flush=True)
        fi.save(sys.argv[1])
        print("saved", n, flush=True)
    """
)


def test_kill_9_during_saves_leaves_a_loadable_version(tmp_path) -> None:
    script = tmp_path / "saver.py"
    script.write_text(KILL_SCRIPT.format(repo=str(REPO)))
    target = tmp_path / "idx"
    rnd = random.Random(3)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True)
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait for at least one completed save
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("saved"):
                break
        time.sleep(rnd.uniform(0.05, 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lines += proc.stdout.read().splitlines()
        proc.stdout.close()
        attempted = {int(s.split()[1]) for s in lines if s.strip()}
        back = load_index(target, expected_model_id="kill", expected_dimension=16)
        assert len(back) in attempted  # a complete version: the last saved or the one in flight
        assert len(back) >= max(int(s.split()[1]) for s in lines if s.startswith("saved"))
        assert np.array_equal(back.ids(), np.arange(len(back)))


# ------------------------------------------------------------------------------------------ threads


def test_concurrent_readers_and_writers(data) -> None:
    ids, x, q = data
    fi = FaissIndex(D, approximate_threshold=2500, background=True, model_id="t")  # a switch mid-run
    fi.upsert(ids[:2000], x[:2000])
    errors: list[BaseException] = []
    stop = threading.Event()
    rng = np.random.default_rng(9)
    moved = clustered(400, seed=11)

    def reader(seed: int) -> None:
        r = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                i = int(r.integers(0, len(q)))
                D_, lab = fi.search(q[i : i + 1], 10, allowed=ids[::7] if i % 2 else None)
                assert (lab >= 0).sum() == 10 and np.all(np.diff(D_[0]) <= 1e-6)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def adder() -> None:
        try:
            for a in range(2000, N, 50):
                fi.upsert(ids[a : a + 50], x[a : a + 50])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    def editor() -> None:
        try:
            for j in range(0, 400, 20):
                fi.upsert(ids[j : j + 20], moved[j : j + 20])
                fi.remove(ids[1000 + j : 1000 + j + 10])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    readers = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    writers = [threading.Thread(target=adder), threading.Thread(target=editor)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert fi.wait_for_rebuild(60)
    assert not errors, errors[:3]
    removed = np.concatenate([ids[1000 + j : 1000 + j + 10] for j in range(0, 400, 20)])
    expected = np.setdiff1d(ids, removed)
    assert fi.current_kind == "hnsw"
    assert np.array_equal(fi.ids(), np.sort(expected))
    assert np.allclose(fi.get_vectors(ids[:400]), moved)
    oracle = ExactIndex(D)
    oracle.upsert(ids, x)
    oracle.upsert(ids[:400], moved)
    oracle.remove(removed)
    De, _ = oracle.search(q, 10)
    assert tie_recall(*fi.search(q, 10), De, 10) >= 0.95
    del rng


@pytest.mark.parametrize("kind", ["exact", "flat", "hnsw"])
def test_similarities_of_given_ids(kind: str) -> None:
    x = clustered(300, seed=3)
    ids = np.arange(10, 310, dtype=np.int64)
    index = ExactIndex(D) if kind == "exact" else make(kind)
    index.upsert(ids, x)
    index.remove(np.array([20], dtype=np.int64))
    q = x[5]
    asked = np.array([15, 20, 999, 309], dtype=np.int64)
    sims = index.similarities(q, asked)
    assert sims.shape == (4,)
    assert np.isclose(sims[0], float(x[5] @ q), atol=1e-5)
    assert np.isnan(sims[1]) and np.isnan(sims[2])  # removed, never added
    assert np.isclose(sims[3], float(x[299] @ q), atol=1e-5)
    assert index.similarities(q, np.zeros(0, dtype=np.int64)).shape == (0,)
