"""Interleaved trials as a running service carries them out: the one-look verdict, trials through the API and the registry follower."""

from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import Session, select

from matcher.domain.tables import AuditEvent, Impression
from matcher.models.trial import judge, wilson
from tests.conftest import TENANT
from tests.matcher.models.fakes import FakeEngine


def _run_trial(p: float, rng: np.random.Generator, *, peek: bool) -> str:
    """Votes arrive in batches, as between two checks of a running service; judge after each batch."""
    wins = losses = 0
    while True:
        n = int(rng.integers(3, 12))
        w = int(rng.binomial(n, p))
        wins, losses = wins + w, losses + n - w
        if peek:  # the rule a one-look design avoids: promote at the first look that clears one half
            lo, hi = wilson(wins, wins + losses)
            if wins + losses >= 10 and lo > 0.5:
                return "promote"
            if wins + losses >= 400:
                return "inconclusive"
            continue
        decision = judge(wins, losses, planned=40)[0]
        if decision != "continue":
            return decision


def test_wilson_interval():
    lo, hi = wilson(30, 40)
    assert lo == pytest.approx(0.5980, abs=1e-3) and hi == pytest.approx(0.8577, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


def test_judge_continues_below_the_planned_votes_then_decides_once():
    assert judge(9, 1, planned=40)[0] == "continue"  # clear, but not yet at the planned number
    assert judge(30, 10, planned=40)[0] == "promote"
    assert judge(22, 18, planned=40)[0] == "inconclusive"
    assert judge(1, 11, planned=40)[0] == "reject"  # harm stops the trial early
    decision, reason, (lo, hi) = judge(30, 10, planned=40)
    assert "30 of 40" in reason and 0.5 < lo < 0.75 < hi


def test_one_look_keeps_false_promotions_at_the_nominal_rate_and_finds_a_clear_winner():
    rng = np.random.default_rng(0)
    equal = [_run_trial(0.5, rng, peek=False) for _ in range(3000)]
    assert equal.count("promote") / len(equal) < 0.04  # nominal: 2.5 % (one side of a 95 % interval)
    peeking = [_run_trial(0.5, rng, peek=True) for _ in range(3000)]
    assert peeking.count("promote") / len(peeking) > 0.08  # what checking at every look would do
    better = [_run_trial(0.75, rng, peek=False) for _ in range(1000)]
    assert better.count("promote") / len(better) > 0.75
    worse = [_run_trial(0.3, rng, peek=False) for _ in range(1000)]
    assert worse.count("promote") == 0 and worse.count("reject") / len(worse) > 0.75


# ---------------------------------------------------------------- a trial through the service


def test_a_trial_interleaves_live_lists_and_is_promoted_by_user_preference(
    store, engine_client, headers, payloads, engine_settings, engine, make_ranker
):
    from matcher.models.trial import evaluate_trial
    from training.registry import TrainingRegistry

    c = engine_client
    for title in ("量子传感器导航", "量子传感器测距", "量子传感器芯片", "激光雷达量子探测"):
        r = c.post("/v1/resources", json=payloads.resource(title=title), headers=headers["admin"])
        assert r.status_code == 201
    reg = TrainingRegistry.for_settings(engine_settings)
    v = reg.register(make_ranker(), scope=TENANT)
    assert c.get("/v1/models/trial", headers=headers["admin"]).status_code == 404
    assert c.post(f"/v1/models/{v.id}/trial", headers=headers["officer"]).status_code == 403
    started = c.post(f"/v1/models/{v.id}/trial", headers=headers["admin"])
    assert started.status_code == 201, started.text
    assert started.json()["serving_interleaved"] and started.json()["incumbent"] == "transparent-1"
    assert c.get("/v1/models", headers=headers["admin"]).json()["on_trial"] == v.id

    for _ in range(12):
        m = c.post("/v1/match", json={"text": "量子传感器", "kinds": ["result"]}, headers=headers["admin"])
        assert m.status_code == 200
        body = m.json()
        assert body["model_version"] == "transparent-1"  # the ranker in service answers for the list
        assert body["interleaved_with"] == v.id
        with Session(engine) as s:
            imps = s.exec(select(Impression).where(Impression.request_id == body["request_id"])).all()
        assert {i.model_version for i in imps} == {"transparent-1", v.id}  # both teams placed items
        pick = next(i.resource_id for i in imps if i.model_version == v.id)
        fb = c.post(
            "/v1/feedback",
            json={"request_id": body["request_id"], "resource_id": pick, "action": "accepted"},
            headers=headers["admin"],
        )
        assert fb.status_code == 201

    status = c.get("/v1/models/trial", headers=headers["officer"]).json()
    assert status["verdict"]["wins"] == 12 and status["verdict"]["losses"] == 0
    assert status["verdict"]["decision"] == "continue"  # fewer decided lists than planned (40)
    assert reg.trial(scope=TENANT)["id"] == v.id  # a read-only look changes nothing
    with Session(engine) as s:
        verdict = evaluate_trial(s, reg, scope=TENANT, planned=10)
    assert verdict.decision == "promote" and verdict.ci95[0] > 0.5
    assert reg.active_id(scope=TENANT) == v.id and reg.trial(scope=TENANT) is None
    assert reg.get(v.id).manifest["trial"]["wins"] == 12
    with Session(engine) as s:  # the promotion is in the tenant's audit trail, by the trial's verdict
        events = s.exec(select(AuditEvent).where(AuditEvent.actor == "trial-verdict")).all()
    assert [(e.tenant_id, e.action, e.record_id) for e in events] == [(TENANT, "model.activate", v.id)]
    # the service switches as its registry follower would: the winner serves alone, lists are plain again
    assert c.post(f"/v1/models/{v.id}/activate", headers=headers["admin"]).json()["serving"] == v.id
    plain = c.post("/v1/match", json={"text": "量子传感器", "kinds": ["result"]}, headers=headers["admin"])
    assert plain.json()["model_version"] == v.id and plain.json()["interleaved_with"] is None
    scores = [m["score"] for m in plain.json()["matches"]]
    assert scores == sorted(scores, reverse=True)


def test_a_trial_ends_when_another_ranker_is_activated_or_it_is_stopped(
    client, headers, settings, make_ranker
):
    from training.registry import TrainingRegistry

    reg = TrainingRegistry.for_settings(settings)
    a, b = reg.register(make_ranker(), scope=TENANT), reg.register(make_ranker(), scope=TENANT)
    assert client.post(f"/v1/models/{a.id}/trial", headers=headers["admin"]).status_code == 201
    assert reg.get(a.id).status == "trial"
    assert client.post(f"/v1/models/{b.id}/activate", headers=headers["admin"]).status_code == 200
    assert reg.trial(scope=TENANT) is None and reg.get(a.id).status == "candidate"  # its incumbent is gone
    assert client.post(f"/v1/models/{a.id}/trial", headers=headers["admin"]).status_code == 201
    assert reg.trial(scope=TENANT)["incumbent"] == b.id
    stopped = client.post("/v1/models/trial/stop", headers=headers["admin"])
    assert stopped.status_code == 200 and stopped.json()["active"] == b.id
    assert reg.trial(scope=TENANT) is None
    assert client.post("/v1/models/trial/stop", headers=headers["admin"]).status_code == 404
    assert client.post(f"/v1/models/{b.id}/trial", headers=headers["admin"]).status_code == 422  # active
    assert client.post("/v1/models/nope/trial", headers=headers["admin"]).status_code == 404


def test_a_running_service_starts_and_stops_interleaving_with_the_registry(settings, engine, make_ranker):
    import threading
    import time

    from matcher.models.follower import follow_registry
    from training.registry import TrainingRegistry

    def wait_for(cond) -> None:
        deadline = time.monotonic() + 10
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cond()

    reg = TrainingRegistry.for_settings(settings)
    eng, stop = FakeEngine(engine), threading.Event()
    s = settings.model_copy(update={"trial_check_s": 0.05})
    t = threading.Thread(target=follow_registry, args=(eng, s, stop), kwargs={"every": 0.01}, daemon=True)
    t.start()
    try:
        v = reg.register(make_ranker())
        reg.start_trial(v.id, incumbent="transparent-1")
        wait_for(lambda: eng.trial is not None and eng.trial.ranker.version == v.id)
        assert eng.trial.share == settings.trial_share
        wait_for(lambda: "trial" in reg.get(v.id).manifest)  # the service judged it (no votes yet)
        assert reg.get(v.id).manifest["trial"]["decision"] == "continue"
        reg.end_trial("ranker", status="candidate")
        wait_for(lambda: eng.trial is None)
    finally:
        stop.set()
        t.join(5)


def test_a_corrupt_trial_artefact_is_refused_once_and_never_served(settings, engine, caplog, make_ranker):
    import logging
    import threading
    import time

    from matcher.models.follower import follow_registry
    from training.registry import TrainingRegistry

    reg = TrainingRegistry.for_settings(settings)
    v = reg.register(make_ranker())
    reg.start_trial(v.id, incumbent="transparent-1")
    (reg.root / v.id / "model.joblib").write_bytes(b"garbage")
    eng, stop = FakeEngine(engine), threading.Event()
    with caplog.at_level(logging.ERROR, logger="matcher.models.follower"):
        t = threading.Thread(target=follow_registry, args=(eng, settings, stop), kwargs={"every": 0.01})
        t.start()
        time.sleep(0.5)  # many ticks
        stop.set()
        t.join(5)
    assert eng.trial is None
    refusals = [r for r in caplog.records if "refusing the ranker on trial" in r.getMessage()]
    assert len(refusals) == 1 and "checksum" in refusals[0].getMessage()
