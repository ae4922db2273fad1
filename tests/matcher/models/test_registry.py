"""The serving registry: activation, rollback, refusal of bad artefacts, engines following it, old artefacts."""

from __future__ import annotations

import json
import sys

import pytest

from matcher.errors import NotFound, ValidationFailed
from matcher.models.registry import ModelArtefactError
from tests.conftest import TENANT
from tests.matcher.models.fakes import FakeEngine
from training.registry import TrainingRegistry


@pytest.fixture
def registry(tmp_path) -> TrainingRegistry:
    return TrainingRegistry(tmp_path / "models" / "registry")


ROWS = [
    {"dense": 0.9, "lexical": 0.2, "relevance": 0.9},
    {"dense": 0.3, "lexical": 0.7, "relevance": 0.4},
    {"dense": 0.5, "lexical": 0.1, "relevance": 0.6},
]


def test_activate_and_rollback(registry, make_ranker):
    a = registry.register(make_ranker())
    b = registry.register(make_ranker())
    registry.activate(a.id)
    registry.activate(b.id)
    assert registry.active_id() == b.id
    assert registry.get(a.id).status == "retired"
    back = registry.rollback()
    assert back is not None and back.id == a.id and registry.active_id() == a.id
    assert registry.rollback() is None  # back to the transparent default
    assert registry.active_id() is None
    with pytest.raises(ValidationFailed):
        registry.rollback()


def test_corrupt_artefact_is_refused_and_the_active_one_kept(registry, make_ranker):
    good = registry.register(make_ranker())
    registry.activate(good.id)
    bad = registry.register(make_ranker())
    path = registry.root / bad.id / "model.joblib"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ModelArtefactError, match="checksum"):
        registry.load(bad.id)
    with pytest.raises(ModelArtefactError):
        registry.activate(bad.id)
    assert registry.active_id() == good.id
    assert registry.load_active().version == good.id


def test_mismatched_library_version_is_refused(registry, make_ranker):
    v = registry.register(make_ranker())
    mpath = registry.root / v.id / "manifest.json"
    m = json.loads(mpath.read_text())
    m["library_versions"]["scikit-learn"] = "0.1.0"
    mpath.write_text(json.dumps(m))
    with pytest.raises(ModelArtefactError, match="scikit-learn"):
        registry.load(v.id)


def test_unknown_model_is_not_found(registry):
    with pytest.raises(NotFound):
        registry.get("ranker-nope")
    with pytest.raises(NotFound):
        registry.get("../etc")


def test_models_api_activate_rollback_and_refuse_corrupt(client, headers, settings, make_ranker):
    reg = TrainingRegistry.for_settings(settings)
    a = reg.register(make_ranker(), scope=TENANT)
    bad = reg.register(make_ranker(), scope=TENANT)
    (reg.root / bad.id / "model.joblib").write_bytes(b"not a model")
    r = client.get("/v1/models", headers=headers["officer"])
    assert r.status_code == 200 and r.json()["count"] == 2 and r.json()["active"] is None
    learned = reg.register(make_ranker(), scope=TENANT, learned=make_ranker().effects_)
    shown = {m["id"]: m for m in client.get("/v1/models", headers=headers["officer"]).json()["data"]}
    assert shown[learned.id]["learned"][0]["feature"] == "relevance" and shown[a.id]["learned"] == []
    assert client.post(f"/v1/models/{a.id}/activate", headers=headers["officer"]).status_code == 403
    ok = client.post(f"/v1/models/{a.id}/activate", headers=headers["admin"])
    assert ok.status_code == 200 and ok.json()["active"] == a.id
    refused = client.post(f"/v1/models/{bad.id}/activate", headers=headers["admin"])
    assert refused.status_code == 422 and "checksum" in refused.json()["detail"]
    assert reg.active_id(scope=TENANT) == a.id
    assert client.post("/v1/models/nope/activate", headers=headers["admin"]).status_code == 404
    back = client.post("/v1/models/rollback", headers=headers["admin"])
    assert back.status_code == 200 and back.json()["active"] is None


def test_engine_keeps_its_ranker_when_the_active_artefact_is_corrupt(settings, caplog, make_ranker):
    from matcher.models.follower import install_active_ranker

    reg = TrainingRegistry.for_settings(settings)
    v = reg.register(make_ranker())
    reg.activate(v.id)
    eng = FakeEngine()
    assert install_active_ranker(eng, settings) == v.id
    (reg.root / v.id / "model.joblib").write_bytes(b"garbage")
    eng2 = FakeEngine()
    assert install_active_ranker(eng2, settings) == "transparent-1"
    assert "refusing the active ranker" in caplog.text


def test_a_running_engine_follows_rankers_activated_elsewhere(settings, make_ranker):
    import threading
    import time

    from matcher.models.follower import follow_registry

    def wait_for(version: str) -> None:
        deadline = time.monotonic() + 10
        while eng.ranker.version != version and time.monotonic() < deadline:
            time.sleep(0.01)
        assert eng.ranker.version == version

    reg = TrainingRegistry.for_settings(settings)
    a, b = reg.register(make_ranker()), reg.register(make_ranker())
    eng, stop = FakeEngine(), threading.Event()
    t = threading.Thread(target=follow_registry, args=(eng, settings, stop), kwargs={"every": 0.02})
    t.start()
    try:
        reg.activate(a.id)  # as `matcher train ranker` does, from another process
        wait_for(a.id)
        reg.activate(b.id)
        wait_for(b.id)
        # a corrupt artefact activated behind the service's back is refused: b keeps serving
        (reg.root / a.id / "model.joblib").write_bytes(b"garbage")
        state = json.loads((reg.root / "state.json").read_text())["scopes"]["*"]
        written = {"scopes": {"*": dict(state, active={"ranker": a.id})}}
        (reg.root / "state.json").write_text(json.dumps(written))
        time.sleep(0.2)
        assert eng.ranker.version == b.id
        # nothing active any more (rolled back past the first model): the transparent default serves
        (reg.root / "state.json").write_text(json.dumps({"scopes": {"*": dict(state, active={})}}))
        wait_for("transparent-1")
    finally:
        stop.set()
        t.join(timeout=5)
    assert not t.is_alive()


def test_each_kind_has_its_own_active_version_and_history(registry, tmp_path, make_ranker):
    ranker = registry.register(make_ranker())
    enc1 = registry.register(None, kind="encoder", artefact_dir=tmp_path / "enc1")
    enc2 = registry.register(None, kind="encoder", artefact_dir=tmp_path / "enc2")
    registry.activate(ranker.id)
    registry.activate(enc1.id)
    registry.activate(enc2.id)
    # activating encoders leaves the ranker serving
    assert registry.active_id("ranker") == ranker.id and registry.get(ranker.id).status == "active"
    assert registry.active_id("encoder") == enc2.id and registry.get(enc1.id).status == "retired"
    assert registry.rollback("encoder").id == enc1.id
    assert registry.active_id("ranker") == ranker.id
    assert registry.rollback() is None  # the ranker's history is empty: back to the transparent default
    assert registry.active_id("ranker") is None and registry.active_id("encoder") == enc1.id


def test_a_state_file_of_the_older_layout_is_read_by_kind(registry, make_ranker):
    a, b = registry.register(make_ranker()), registry.register(make_ranker())
    registry.root.mkdir(parents=True, exist_ok=True)
    (registry.root / "state.json").write_text(json.dumps({"active": b.id, "history": [a.id]}))
    assert registry.active_id("ranker") == b.id and registry.active_id("encoder") is None
    assert registry.rollback().id == a.id


def test_an_encoder_activated_elsewhere_is_switched_in(settings, encoder_dir, tmp_path):
    import shutil
    import threading
    import time
    import types

    from embeddings.encoders.sentence import load_encoder
    from matcher.matching.ranker import TransparentRanker
    from matcher.models.follower import follow_registry

    other = tmp_path / "encoder-next"
    shutil.copytree(encoder_dir, other)

    class EncoderEngine(FakeEngine):
        supply = types.SimpleNamespace(encoder=load_encoder(encoder_dir))
        swapped: list[str] = []

        def swap_encoder(self, enc):
            self.swapped.append(enc.model_id)
            self.supply = types.SimpleNamespace(encoder=enc)

    eng, stop = EncoderEngine(), threading.Event()
    configured = settings.model_copy(update={"encoder": str(other)})
    reg = TrainingRegistry.for_settings(configured)
    t = threading.Thread(target=follow_registry, args=(eng, configured, stop), kwargs={"every": 0.02})
    t.start()
    try:
        time.sleep(0.1)
        assert eng.swapped == []  # nothing activated yet: nothing switches
        v = reg.register(None, kind="encoder", artefact_dir=other)
        reg.activate(v.id)
        deadline = time.monotonic() + 10
        while not eng.swapped and time.monotonic() < deadline:
            time.sleep(0.01)
        assert eng.swapped == [load_encoder(other).model_id]
        assert reg.active_id("ranker") is None and isinstance(eng.ranker, TransparentRanker)
    finally:
        stop.set()
        t.join(timeout=5)


def test_a_ranker_artefact_loads_in_a_process_without_training(registry, make_ranker):
    import subprocess
    import sys
    from pathlib import Path

    trained = make_ranker()
    v = registry.register(trained)
    assert v.manifest["class"] == "matcher.models.learned.LearnedRanker"
    assert b"training" not in (registry.root / v.id / "model.joblib").read_bytes()
    script = (
        "import sys, json\n"
        "sys.modules['training'] = None  # any import of training fails\n"
        "from matcher.models.registry import ModelRegistry\n"
        f"est = ModelRegistry({str(registry.root)!r}).load({v.id!r})\n"
        f"print(json.dumps([type(est).__module__, est.score({ROWS!r}).tolist()]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    module, scores = json.loads(out.stdout)
    assert module == "matcher.models.learned"
    assert scores == pytest.approx(trained.score(ROWS).tolist())


def test_an_artefact_saved_under_the_old_class_path_still_loads(registry, make_ranker, monkeypatch):
    """Artefacts registered before the layout by concept name training.ranker.LearnedRanker and _Platt."""
    from matcher.models.learned import LearnedRanker, PlattCalibrator
    from matcher.models.registry import LEGACY_RANKER_MODULE, legacy_class_paths

    trained = make_ranker()
    with monkeypatch.context() as m, legacy_class_paths():  # pickle them as the code before the move did
        m.setattr(LearnedRanker, "__module__", LEGACY_RANKER_MODULE)
        m.setattr(PlattCalibrator, "__module__", LEGACY_RANKER_MODULE)
        # a type's __qualname__ is a slot monkeypatch cannot restore; set and restore it by hand
        PlattCalibrator.__qualname__ = "_Platt"
        try:
            v = registry.register(trained)
        finally:
            PlattCalibrator.__qualname__ = "PlattCalibrator"
    raw = (registry.root / v.id / "model.joblib").read_bytes()
    assert LEGACY_RANKER_MODULE.encode() in raw and b"_Platt" in raw and b"matcher.models" not in raw
    assert LEGACY_RANKER_MODULE not in sys.modules  # the alias lives only while an artefact loads
    loaded = registry.load(v.id)
    assert isinstance(loaded, LearnedRanker) and loaded.version == v.id
    assert loaded.score(ROWS) == pytest.approx(trained.score(ROWS))
