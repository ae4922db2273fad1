"""The teacher tier: a background queue of teacher vectors per side, persisted, used by retrieval when on."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from matcher.indexing.teacher_tier import TeacherStore, TeacherUnavailable
from matcher.matching.retrieval import Relevance


class FakeTeacher:
    """A deterministic encoder (character hashes projected to 16 dimensions); `gate` holds every embedding."""

    def __init__(self, dimension: int = 16, model_id: str = "fake-teacher@000000000000") -> None:
        self.model_id = model_id
        self.dimension = dimension
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dimension, np.float32)
        for ch in text:
            h = hashlib.sha256(ch.encode()).digest()
            v[h[0] % self.dimension] += 1.0 if h[1] % 2 else -1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_queries(self, texts, *, batch_size: int = 64) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts])

    def encode_documents(self, texts, *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.gate.wait(10)
        self.calls += 1
        return np.stack([self._vec(t) for t in texts])


def _store(tmp_path, teacher=None) -> TeacherStore:
    store = TeacherStore("supply", teacher or FakeTeacher(), tmp_path, batch=4)
    store.start()
    return store


def test_submit_never_waits_for_the_teacher_and_the_queue_drains(tmp_path):
    teacher = FakeTeacher()
    teacher.gate.clear()  # the teacher is stuck
    store = _store(tmp_path, teacher)
    t0 = time.perf_counter()
    store.submit(list(range(1, 11)), [f"记录 {i}" for i in range(1, 11)], [1.0] * 10)
    store.submit([11], ["another"], [1.0])
    store.drop([11])
    assert time.perf_counter() - t0 < 0.5
    assert store.coverage() == (0, 10)
    assert not store.drain(timeout=0.2)
    teacher.gate.set()
    assert store.drain(timeout=10)
    assert store.coverage() == (10, 10)
    q = teacher.encode_queries(["记录 3"])[0]
    sims = store.similarities(q, [3, 11, 99])
    assert set(sims) == {3} and sims[3] == pytest.approx(1.0, abs=1e-5)
    store.close()


def test_a_changed_record_is_re_embedded_and_a_deleted_one_dropped(tmp_path):
    teacher = FakeTeacher()
    store = _store(tmp_path, teacher)
    store.submit([1, 2], ["石墨烯导热膜", "锂电池回收"], [1.0, 1.0])
    assert store.drain(timeout=10)
    q = teacher.encode_queries(["锂电池回收"])[0]
    assert store.similarities(q, [2])[2] == pytest.approx(1.0, abs=1e-5)
    teacher.gate.clear()
    store.submit([2], ["机器视觉检测"], [2.0])
    assert not store.has(2)  # the old vector is gone at once: the student scores it meanwhile
    assert store.coverage() == (1, 2)
    teacher.gate.set()
    assert store.drain(timeout=10)
    q2 = teacher.encode_queries(["机器视觉检测"])[0]
    assert store.similarities(q2, [2])[2] == pytest.approx(1.0, abs=1e-5)
    store.submit([2], ["机器视觉检测"], [2.0])  # same stamp: nothing to do
    assert store.pending == 0
    store.drop([1])
    assert store.similarities(q, [1, 2]).keys() == {2}
    assert store.coverage() == (1, 1)
    store.close()


def test_a_record_changed_while_embedded_keeps_only_its_new_vector(tmp_path):
    teacher = FakeTeacher()
    teacher.gate.clear()
    store = _store(tmp_path, teacher)
    store.submit([1], ["旧文本"], [1.0])
    time.sleep(0.2)  # the worker holds the old text now
    store.submit([1], ["新文本"], [2.0])
    teacher.gate.set()
    assert store.drain(timeout=10)
    new = teacher.encode_queries(["新文本"])[0]
    assert store.similarities(new, [1])[1] == pytest.approx(1.0, abs=1e-5)
    store.close()


def test_vectors_persist_and_reload_and_stale_ones_are_named(tmp_path):
    teacher = FakeTeacher()
    store = _store(tmp_path, teacher)
    store.submit([1, 2, 3], ["一", "二", "三"], [1.0, 1.0, 1.0])
    assert store.drain(timeout=10)
    store.save()
    store.close()
    again = TeacherStore("supply", teacher, tmp_path)
    again.load()
    assert again.vectors == 3
    q = teacher.encode_queries(["二"])[0]
    assert again.similarities(q, [2])[2] == pytest.approx(1.0, abs=1e-5)
    # the store now holds 1 unchanged, 2 changed, 4 new; 3 is gone
    assert again.retain({1: 1.0, 2: 5.0, 4: 1.0}) == {2, 4}
    assert again.vectors == 2


def test_vectors_of_another_dimension_refuse_with_one_line(tmp_path):
    store = _store(tmp_path, FakeTeacher(16))
    store.submit([1], ["一"], [1.0])
    assert store.drain(timeout=10)
    store.save()
    store.close()
    other = TeacherStore("supply", FakeTeacher(8), tmp_path)
    with pytest.raises(TeacherUnavailable) as info:
        other.load()
    assert "\n" not in str(info.value) and "dimension" in str(info.value)


def test_a_teacher_path_that_does_not_exist_stops_the_start_with_one_line(engine_settings, engine, tmp_path):
    settings = engine_settings.model_copy(update={"teacher": "on", "teacher_model": tmp_path / "nowhere"})
    with pytest.raises(TeacherUnavailable) as info:
        with TestClient(create_app(settings)):
            pass
    assert "\n" not in str(info.value) and "nowhere" in str(info.value)


def test_a_teacher_of_another_dimension_than_its_calibration_is_refused(tmp_path):
    from matcher.matching.calibration import teacher_fusion_for

    with pytest.raises(TeacherUnavailable) as info:
        teacher_fusion_for(FakeTeacher(16, model_id="multilingual-e5-small@000000000000"))
    assert "\n" not in str(info.value) and "dimension 16" in str(info.value)
    with pytest.raises(TeacherUnavailable):
        teacher_fusion_for(FakeTeacher(16, model_id="no-calibration@0"))


BODY = {
    "kind": "result",
    "description": "高导热石墨烯薄膜的卷对卷制备方法，用于手机散热。",
    "industries": ["二维材料"],
    "details": {"holder": "某大学", "trl": 6},
}


def _match(client, headers, text="石墨烯导热膜"):
    r = client.post(
        "/v1/match",
        json={"text": text, "k": 50, "min_score": 0, "per_provider": 0, "explain": True},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()["matches"]


def _engine_with_teacher(monkeypatch, teacher, languages=("zh", "latin")):
    """create_app's engine built with the fake teacher and a fixed teacher calibration."""
    from matcher.matching import engine as engine_mod

    real = engine_mod.MatchEngine.__init__

    def init(self, *a, **kw):
        kw.setdefault("teacher", teacher)
        kw.setdefault(
            "teacher_relevance", Relevance(languages={lang: (0.5, 0.3, 0.05) for lang in languages})
        )
        real(self, *a, **kw)

    monkeypatch.setattr(engine_mod.MatchEngine, "__init__", init)


def test_records_become_teacher_scored_and_the_tier_survives_a_restart(
    engine_settings, engine, headers, monkeypatch
):
    teacher = FakeTeacher()
    _engine_with_teacher(monkeypatch, teacher)
    with TestClient(create_app(engine_settings)) as c:
        state = c.app.state.app_state
        made = [
            c.post(
                "/v1/resources", json=dict(BODY, title=f"石墨烯导热膜 {i}"), headers=headers["admin"]
            ).json()["id"]
            for i in range(4)
        ]
        store = state.matcher.indexer.teachers["supply"]
        assert store.drain(timeout=20)
        got = _match(c, headers["admin"])
        assert {m["resource"]["id"] for m in got} == set(made)
        assert all(m["explanation"]["components"].get("tier") == "teacher" for m in got)
        ready = c.get("/readyz").json()
        assert ready["teacher"]["supply"]["coverage"] == 1.0
        assert "parkmatch_teacher_coverage" in c.get("/metrics").text
        c.delete(f"/v1/resources/{made[0]}", headers=headers["admin"])
        assert not store.has(made[0])
    calls = teacher.calls
    with TestClient(create_app(engine_settings)) as c:
        store = c.app.state.app_state.matcher.indexer.teachers["supply"]
        assert store.drain(timeout=20)
        assert store.coverage() == (3, 3)
        assert teacher.calls == calls  # reloaded, not embedded again


def test_tier_off_scores_as_the_student(engine_settings, engine, headers):
    with TestClient(create_app(engine_settings)) as c:
        state = c.app.state.app_state
        assert state.matcher.indexer.teachers == {} and state.matcher.supply.teacher is None
        assert state.matcher.pipeline.teacher is None
        c.post("/v1/resources", json=dict(BODY, title="石墨烯导热膜"), headers=headers["admin"])
        got = _match(c, headers["admin"])
        assert got and all("tier" not in m["explanation"]["components"] for m in got)
        assert "teacher" not in c.get("/readyz").json()
        assert "parkmatch_teacher_coverage" not in c.get("/metrics").text


def test_a_record_the_teacher_gives_no_vector_for_stays_with_the_student(tmp_path):
    class NoVector(FakeTeacher):
        def encode_documents(self, texts, **kw):
            out = super().encode_documents(texts, **kw)
            out[[i for i, t in enumerate(texts) if t == "空"]] = np.nan
            return out

    store = _store(tmp_path, NoVector())
    store.submit([1, 2], ["空", "石墨烯"], [1.0, 1.0])
    assert store.drain(timeout=10)
    assert not store.has(1) and store.has(2) and store.skipped == 1
    store.close()


def test_a_query_language_the_tier_is_not_calibrated_for_stays_with_the_student(
    engine_settings, engine, headers, monkeypatch
):
    _engine_with_teacher(monkeypatch, FakeTeacher(), languages=("latin",))
    with TestClient(create_app(engine_settings)) as c:
        c.post("/v1/resources", json=dict(BODY, title="石墨烯导热膜 graphene film"), headers=headers["admin"])
        assert c.app.state.app_state.matcher.indexer.teachers["supply"].drain(timeout=20)
        zh = _match(c, headers["admin"], "石墨烯导热膜")
        en = _match(c, headers["admin"], "graphene film")
        assert zh and all("tier" not in m["explanation"]["components"] for m in zh)
        assert en and all(m["explanation"]["components"].get("tier") == "teacher" for m in en)
