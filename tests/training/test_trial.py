"""Interleaved ranker trials: team-draft interleaving, the one-look verdict, and a trial through the API."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sqlmodel import Session, select

from matcher.domain.tables import Impression
from matcher.matching.interleave import CANDIDATE, INCUMBENT, preference, team_draft
from matcher.models.trial import judge, wilson

# ---------------------------------------------------------------- team-draft interleaving


def test_team_draft_takes_each_item_once_and_keeps_the_teams_balanced():
    a = list("abcdefgh")
    b = list("hgfedcba")
    for seed in range(50):
        merged = team_draft(a, b, 8, random.Random(seed))
        items = [i for i, _ in merged]
        assert sorted(items) == sorted(a)  # every item once
        for n in range(1, len(merged) + 1):  # every prefix: the teams' picks differ by at most one
            picks = [t for _, t in merged[:n]]
            assert abs(picks.count(INCUMBENT) - picks.count(CANDIDATE)) <= 1
        # each team's picks appear in its own ranker's order
        for team, order in ((INCUMBENT, a), (CANDIDATE, b)):
            mine = [i for i, t in merged if t == team]
            assert mine == sorted(mine, key=order.index)


def test_team_draft_of_one_ranking_is_that_ranking_and_a_short_list_is_filled_by_the_other():
    a = [1, 2, 3, 4, 5]
    assert [i for i, _ in team_draft(a, a, 5, random.Random(3))] == a
    merged = team_draft([1, 2], [3, 4, 5, 6], 5, random.Random(0))
    assert len(merged) == 5 and {i for i, _ in merged} <= {1, 2, 3, 4, 5, 6}
    assert [t for i, t in merged if i in (1, 2)] == [INCUMBENT, INCUMBENT]
    assert team_draft([], [], 3, random.Random(0)) == []


def test_users_who_prefer_neither_order_do_not_favour_either_ranker():
    """Position bias cancels: random examination and acceptance give no preference on average."""
    rng = random.Random(7)
    a = list(range(20))
    b = list(reversed(a))
    prefs = []
    for _ in range(4000):
        merged = team_draft(a, b, 10, rng)
        positives = {i for pos, (i, _) in enumerate(merged, 1) if rng.random() < 0.6 / pos}
        prefs.append(preference(dict(merged), positives))
    assert abs(np.mean(prefs)) < 0.03


def test_preference_is_the_sign_of_the_positive_outcomes_per_team():
    teams = {1: INCUMBENT, 2: CANDIDATE, 3: CANDIDATE}
    assert preference(teams, {2, 3}) == 1
    assert preference(teams, {1}) == -1
    assert preference(teams, {1, 2}) == 0
    assert preference(teams, set()) == 0
    assert preference(teams, {99}) == 0  # an item not in the list counts for nobody


# ---------------------------------------------------------------- the verdict


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
    v = reg.register(make_ranker())
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
    assert reg.trial()["id"] == v.id  # a read-only look changes nothing
    with Session(engine) as s:
        verdict = evaluate_trial(s, reg, planned=10)
    assert verdict.decision == "promote" and verdict.ci95[0] > 0.5
    assert reg.active_id() == v.id and reg.trial() is None
    assert reg.get(v.id).manifest["trial"]["wins"] == 12
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
    a, b = reg.register(make_ranker()), reg.register(make_ranker())
    assert client.post(f"/v1/models/{a.id}/trial", headers=headers["admin"]).status_code == 201
    assert reg.get(a.id).status == "trial"
    assert client.post(f"/v1/models/{b.id}/activate", headers=headers["admin"]).status_code == 200
    assert reg.trial() is None and reg.get(a.id).status == "candidate"  # compared with a ranker now gone
    assert client.post(f"/v1/models/{a.id}/trial", headers=headers["admin"]).status_code == 201
    assert reg.trial()["incumbent"] == b.id
    stopped = client.post("/v1/models/trial/stop", headers=headers["admin"])
    assert stopped.status_code == 200 and stopped.json()["active"] == b.id
    assert reg.trial() is None
    assert client.post("/v1/models/trial/stop", headers=headers["admin"]).status_code == 404
    assert client.post(f"/v1/models/{b.id}/trial", headers=headers["admin"]).status_code == 422  # active
    assert client.post("/v1/models/nope/trial", headers=headers["admin"]).status_code == 404


def test_trial_command_reports_or_refuses_in_one_line(settings, engine, monkeypatch, capsys, make_ranker):
    import json

    from matcher.cli.main import main
    from training.registry import TrainingRegistry

    monkeypatch.setenv("MATCHER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MATCHER_DATABASE_URL", settings.sqlalchemy_url)
    with pytest.raises(SystemExit) as exc:
        main(["trial"])
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert "no ranker is on trial" in err and "\n" not in err
    reg = TrainingRegistry.for_settings(settings)
    v = reg.register(make_ranker())
    reg.start_trial(v.id, incumbent="transparent-1")
    with pytest.raises(SystemExit) as exc:
        main(["trial", "--dry-run"])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trial"]["model"] == v.id and out["trial"]["lists"] == 0
    assert out["trial"]["decision"] == "continue" and reg.trial()["id"] == v.id
    with pytest.raises(SystemExit) as exc:
        main(["trial", "--stop"])
    assert json.loads(capsys.readouterr().out)["stopped"] is True
    assert reg.trial() is None and reg.get(v.id).status == "candidate"


@pytest.mark.parametrize(
    ("ci", "kind", "running", "expect"),
    [
        ((0.01, 0.05), "feedback", False, "activated"),
        ((-0.03, 0.04), "feedback", False, "trial"),
        ((-0.06, -0.01), "feedback", False, "rejected"),
        ((-0.03, 0.04), "qrels", False, "rejected"),  # unbiased labels: nothing for live traffic to add
        ((-0.03, 0.04), "feedback", True, "rejected"),  # a running trial is not replaced
    ],
)
def test_the_promotion_rule_activates_tries_or_keeps(
    tmp_path, monkeypatch, ci, kind, running, expect, make_ranker
):
    import training.rankers.promotion as promotion
    from training.data.labels import LabelledRows
    from training.evaluation.compare import Comparison
    from training.registry import TrainingRegistry

    reg = TrainingRegistry(tmp_path / "registry")
    if running:
        other = reg.register(make_ranker())
        reg.start_trial(other.id, incumbent="transparent-1")
    cmp = Comparison(40, 0.7, 0.69, (ci[0] + ci[1]) / 2, ci[0], ci[1], ci[0] > 0)
    monkeypatch.setattr(promotion, "train_and_compare", lambda *a, **k: (make_ranker(), cmp, {}))
    data = LabelledRows(source={"kind": "qrels" if kind == "qrels" else "feedback"})
    out = promotion.train_and_decide(reg, data, source={}, params={})
    status = reg.get(out["model"]).status
    if expect == "activated":
        assert out["activated"] and reg.active_id() == out["model"] and status == "active"
    elif expect == "trial":
        assert out["trial"] and reg.trial()["id"] == out["model"] and status == "trial"
        assert reg.trial()["incumbent"] == "transparent-1" and reg.active_id() is None
    else:
        assert not out["activated"] and not out["trial"] and status == "rejected"
        assert reg.active_id() is None
        assert (reg.trial() or {}).get("id") != out["model"]


def test_a_running_service_starts_and_stops_interleaving_with_the_registry(settings, engine, make_ranker):
    import threading
    import time

    from matcher.matching.ranker import TransparentRanker
    from matcher.models.follower import follow_registry
    from training.registry import TrainingRegistry

    class FakeEngine:
        ranker = TransparentRanker()
        trial = None
        db = engine

    def wait_for(cond) -> None:
        deadline = time.monotonic() + 10
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cond()

    reg = TrainingRegistry.for_settings(settings)
    eng, stop = FakeEngine(), threading.Event()
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


def test_train_ranker_from_logged_feedback_registers_and_decides(tmp_path, monkeypatch, capsys):
    """`matcher train ranker` on a store with served lists and feedback: a candidate is registered with its
    held-out comparison, and activated, put on trial or kept out as its interval says."""
    import json

    from bench.park_sim import Park, simulate_park
    from matcher.cli.main import main
    from training.registry import TrainingRegistry

    park = Park(n_resources=600, n_needs=60, seed=1, data_dir=tmp_path)
    try:
        simulate_park(park, max_events=120, every=10_000, seed=1)  # logging only: no training inside
        url = park.settings.sqlalchemy_url
    finally:
        park.close()
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MATCHER_DATABASE_URL", url)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["train", "ranker"])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    reg = TrainingRegistry(tmp_path / "models" / "registry")
    manifest = reg.get(out["model"]).manifest
    assert manifest["data"]["positives"] >= 10 and manifest["params"]["incumbent"] == "transparent-1"
    # what it learned, in both languages, strongest first (the full list stays in the manifest)
    assert out["learned"] and all(e["en"] and e["zh"] for e in out["learned"])
    assert [e["feature"] for e in out["learned"]] == [e["feature"] for e in manifest["learned"][:5]]
    ci = out["evaluation"]["ci95"]
    assert manifest["ci"]["low"] == ci[0] and manifest["ci"]["high"] == ci[1]
    if ci[0] > 0:
        assert out["activated"] and reg.active_id() == out["model"]
    elif ci[1] > 0:
        assert out["trial"] and reg.trial()["id"] == out["model"] and reg.active_id() is None
    else:
        assert not out["activated"] and not out["trial"] and manifest["status"] == "rejected"
    assert out["previous_trial"] is None
    if out["trial"]:  # training again judges the running trial first and does not replace it
        with pytest.raises(SystemExit):
            main(["train", "ranker"])
        again = json.loads(capsys.readouterr().out)
        assert again["previous_trial"]["model"] == out["model"]
        assert again["previous_trial"]["decision"] == "continue"  # no interleaved list served yet
        assert reg.trial()["id"] == out["model"] and not again["trial"]


def test_a_corrupt_trial_artefact_is_refused_once_and_never_served(settings, engine, caplog, make_ranker):
    import logging
    import threading
    import time

    from matcher.matching.ranker import TransparentRanker
    from matcher.models.follower import follow_registry
    from training.registry import TrainingRegistry

    class FakeEngine:
        ranker = TransparentRanker()
        trial = None
        db = engine

    reg = TrainingRegistry.for_settings(settings)
    v = reg.register(make_ranker())
    reg.start_trial(v.id, incumbent="transparent-1")
    (reg.root / v.id / "model.joblib").write_bytes(b"garbage")
    eng, stop = FakeEngine(), threading.Event()
    with caplog.at_level(logging.ERROR, logger="matcher.models.follower"):
        t = threading.Thread(target=follow_registry, args=(eng, settings, stop), kwargs={"every": 0.01})
        t.start()
        time.sleep(0.5)  # many ticks
        stop.set()
        t.join(5)
    assert eng.trial is None
    refusals = [r for r in caplog.records if "refusing the ranker on trial" in r.getMessage()]
    assert len(refusals) == 1 and "checksum" in refusals[0].getMessage()
