"""The park scenario of the learning-curve benchmark: the hidden rule, and a tiny run end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import pytest

from bench.learning_curve import main
from bench.park_sim import APPLY_DAYS, Park, ParkNeed, ParkResource, truly_matches

TODAY = date(2026, 1, 1)


def _need(kind: str, **kw) -> ParkNeed:
    base = {
        "id": 1,
        "industry": "机器人",
        "kind": kind,
        "stage": "startup",
        "region": "北京",
        "amount": 3e6,
        "trl_min": 5,
    }
    return ParkNeed(**(base | kw))


def _res(kind: str, facts: dict, **kw) -> ParkResource:
    base = {"id": 1, "kind": kind, "industry": "机器人", "tagged": True, "region": "上海", "facts": facts}
    return ParkResource(**(base | kw))


def test_truth_depends_on_the_facts_not_only_the_topic():
    fund = _res("fund", {"stages": ["startup", "growth"], "ticket_min": 1e6, "ticket_max": 1e7})
    need = _need("fund")
    assert truly_matches(need, fund, TODAY)
    assert not truly_matches(replace(need, amount=5e7), fund, TODAY)  # ticket does not cover the amount
    assert not truly_matches(replace(need, stage="mature"), fund, TODAY)  # stage does not fit
    assert not truly_matches(need, replace(fund, facts={"stages": ["startup"]}), TODAY)  # ticket unknown
    assert not truly_matches(need, replace(fund, industry="无人机"), TODAY)  # another topic
    result = _res("result", {"trl": 6, "price": 1e6})
    assert truly_matches(_need("result"), result, TODAY)
    assert not truly_matches(_need("result", trl_min=7), result, TODAY)
    assert not truly_matches(_need("result"), replace(result, facts={"price": 1e6}), TODAY)  # TRL unknown
    later = (TODAY + timedelta(days=APPLY_DAYS + 5)).isoformat()
    soon = (TODAY + timedelta(days=APPLY_DAYS - 5)).isoformat()
    scen = _res("scenario", {"budget": 5e6, "deadline": later}, region="北京")
    assert truly_matches(_need("scenario"), scen, TODAY)
    assert not truly_matches(_need("scenario"), replace(scen, region="深圳"), TODAY)
    assert not truly_matches(_need("scenario"), replace(scen, facts={"budget": 5e6, "deadline": soon}), TODAY)
    assert not truly_matches(_need("scenario", amount=8e6), scen, TODAY)
    inc = _res("incubator", {"facilities": ["中试线"]}, region="北京")
    assert truly_matches(_need("incubator"), inc, TODAY)
    assert not truly_matches(_need("incubator"), replace(inc, region="杭州"), TODAY)


def test_generated_park_has_topical_non_matches():
    park = Park(n_resources=400, n_needs=40, seed=3)
    try:
        assert park.needs and all(park.truth[n] for n in park.needs)
        topical = [
            (n, r)
            for n in park.needs.values()
            for r in park.resources.values()
            if r.kind == n.kind and r.industry == n.industry
        ]
        false_topical = [(n, r) for n, r in topical if r.id not in park.truth[n.id]]
        # the facts, not the topic alone, decide a large share of the topical pairs
        assert len(false_topical) >= 0.3 * len(topical)
        out = park.serve(next(iter(park.needs)))
        assert 0 < len(out.candidates) <= 10 and out.model_version == "transparent-1"
    finally:
        park.close()


@pytest.mark.slow
def test_tiny_park_run_prints_the_curve(tmp_path, capsys):
    main(
        [
            "--scenario",
            "park",
            "--resources",
            "600",
            "--needs",
            "60",
            "--events",
            "120",
            "--every",
            "40",
            "--seed",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads((tmp_path / "learning_curve.json").read_text())
    curve = result["curve"]
    assert curve[0]["events"] == 0 and curve[0]["serving"] == "transparent-1" and not curve[0]["promoted"]
    assert len(curve) >= 3 and curve[-1]["events"] >= 120
    assert result["feedback"]["accepted"] + result["feedback"]["rejected"] == curve[-1]["events"]
    for prev, p in zip(curve, curve[1:], strict=False):
        for key in ("events", "serving", "ndcg@10", "candidate_ndcg@10", "ci95", "promoted", "reason"):
            assert key in p
        assert p["events"] > prev["events"]
        if p["promoted"]:
            # by the logged comparison (its interval above zero) or by users, in an interleaved trial
            won_trial = (p.get("trial") or {}).get("decision") == "promote"
            assert won_trial or p["ci95"][0] > 0
            assert p["serving"] != prev["serving"] and p["serving"].startswith("ranker-")
        else:
            # nothing promoted: the same ranker keeps serving, and its held-out figure does not move
            assert p["serving"] == prev["serving"]
            assert p["ndcg@10"] == pytest.approx(prev["ndcg@10"], abs=1e-4)
    assert result["final_ndcg@10"] == curve[-1]["ndcg@10"]
    assert (
        result["needs"]["simulated"] + result["needs"]["held_out"]
        == result["park"]["needs_with_a_true_match"]
    )
    if result["png"] is not None:
        assert (tmp_path / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_outcomes_raise_the_served_ranking_through_an_interleaved_trial(tmp_path, capsys):
    """The product's learning loop, end to end: a candidate the logged comparison cannot judge goes on trial,
    users prefer it in interleaved lists, it is promoted, and held-out needs are served better."""
    main(
        [
            "--scenario",
            "park",
            "--resources",
            "2000",
            "--needs",
            "160",
            "--events",
            "300",
            "--seed",
            "1",
            "--out",
            str(tmp_path),
        ]
    )
    result = json.loads(capsys.readouterr().out)
    curve = result["curve"]
    started = [p for p in curve if p.get("put_on_trial")]
    assert started and started[0]["ci95"][0] <= 0 < started[0]["ci95"][1]  # the log could not tell
    promoted = [p for p in curve if p["promoted"]]
    assert promoted, "no ranker was promoted within 300 events"
    first = promoted[0]
    assert first["trial"]["decision"] == "promote" and first["trial"]["ci95"][0] > 0.5
    assert first["trial"]["wins"] + first["trial"]["losses"] >= 40  # judged at the planned number of votes
    assert result["feedback"]["interleaved_sessions"] > 0
    assert result["final_ndcg@10"] > result["start_ndcg@10"] + 0.1


@pytest.mark.slow
def test_trial_cost_bench_times_plain_and_interleaved_matches():
    from bench.trial_cost import measure

    out = measure(resources=600, needs=60, seed=1, repeats=1)
    assert out["candidate"].startswith("ranker-") and out["candidate_class"] == "LearnedRanker"
    for key in ("plain", "interleaved"):
        assert out[key]["requests"] == out["needs"] > 0
        assert 0 < out[key]["p50_ms"] <= out[key]["p99_ms"]
