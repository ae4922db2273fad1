"""`matcher trial` and `matcher train ranker` from logged feedback: one-line reports and refusals, registered candidates."""

from __future__ import annotations

import pytest


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


def test_train_ranker_from_logged_feedback_registers_and_decides(tmp_path, monkeypatch, capsys):
    """`matcher train ranker` on a store with served lists and feedback: a candidate is registered with its
    held-out comparison, and activated, put on trial or kept out as its interval says."""
    import json

    from bench.park_sim import TENANT, Park, simulate_park
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
        main(["train", "ranker", "--tenant", TENANT])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    reg = TrainingRegistry(tmp_path / "models" / "registry")
    manifest = reg.get(out["model"]).manifest
    assert manifest["data"]["positives"] >= 10 and manifest["params"]["incumbent"] == "transparent-1"
    assert manifest["scope"] == TENANT and manifest["data"]["scope"] == TENANT
    # what it learned, in both languages, strongest first (the full list stays in the manifest)
    assert out["learned"] and all(e["en"] and e["zh"] for e in out["learned"])
    assert [e["feature"] for e in out["learned"]] == [e["feature"] for e in manifest["learned"][:5]]
    ci = out["evaluation"]["ci95"]
    assert manifest["ci"]["low"] == ci[0] and manifest["ci"]["high"] == ci[1]
    if ci[0] > 0:
        assert out["activated"] and reg.active_id(scope=TENANT) == out["model"]
    elif ci[1] > 0:
        assert out["trial"] and reg.trial(scope=TENANT)["id"] == out["model"]
        assert reg.active_id(scope=TENANT) is None
    else:
        assert not out["activated"] and not out["trial"] and manifest["status"] == "rejected"
    assert out["previous_trial"] is None
    # what the command switched is in the tenant's audit trail, by the operator
    from sqlalchemy import create_engine
    from sqlmodel import Session, select

    from matcher.domain.tables import AuditEvent

    db = create_engine(url)
    with Session(db) as session:
        events = [(e.tenant_id, e.actor, e.action, e.record_id) for e in session.exec(select(AuditEvent))]
    db.dispose()
    expected = {"model.activate"} if out["activated"] else {"model.trial"} if out["trial"] else set()
    assert {(TENANT, "operator", a, out["model"]) for a in expected} == set(events)
    if out["trial"]:  # training again judges the running trial first and does not replace it
        with pytest.raises(SystemExit):
            main(["train", "ranker", "--tenant", TENANT])
        again = json.loads(capsys.readouterr().out)
        assert again["previous_trial"]["model"] == out["model"]
        assert again["previous_trial"]["decision"] == "continue"  # no interleaved list served yet
        assert reg.trial(scope=TENANT)["id"] == out["model"] and not again["trial"]
    assert reg.active_id() is None and reg.trial() is None  # the shared scope is untouched


def test_train_ranker_asks_whose_ranker_it_is(settings, monkeypatch, capsys):
    """Without --tenant or --shared nothing is read: all tenants' feedback is used only when asked."""
    from matcher.cli.main import main

    monkeypatch.setenv("MATCHER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("MATCHER_DATABASE_URL", settings.sqlalchemy_url)
    for args in ([], ["--tenant", "tenant-a", "--shared"], ["--tenant", "*"]):
        with pytest.raises(SystemExit) as exc:
            main(["train", "ranker", *args])
        assert exc.value.code != 0
        err = capsys.readouterr().err.strip()
        assert ("--shared" in err or "shared scope" in err) and "\n" not in err
