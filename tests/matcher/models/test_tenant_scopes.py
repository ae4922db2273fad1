"""Learned rankers belong to a tenant: one tenant's admin cannot see or switch another's models, what one
tenant activates is not what another is served, training and trial votes read one tenant's outcomes only,
and a registry of the older single-scope layout keeps serving as the shared scope."""

from __future__ import annotations

import json

from sqlmodel import Session

from matcher.domain.tables import Feedback, Impression
from matcher.models.follower import install_active_ranker
from matcher.models.registry import SHARED
from tests.conftest import OTHER_TENANT, TENANT
from tests.matcher.models.fakes import FakeEngine
from training.registry import TrainingRegistry

QUERY = {"text": "量子传感器", "kinds": ["result"]}


def _served(client, headers) -> tuple[str, str | None]:
    """(model_version, interleaved_with) of one match by `headers`' tenant."""
    r = client.post("/v1/match", json=QUERY, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["model_version"], r.json()["interleaved_with"]


def test_a_tenant_admin_cannot_read_or_switch_another_tenants_models(
    engine_client, headers, payloads, engine_settings, make_ranker
):
    c = engine_client
    for who in ("admin", "other"):
        for title in ("量子传感器导航", "量子传感器芯片", "激光雷达量子探测"):
            r = c.post("/v1/resources", json=payloads.resource(title=title), headers=headers[who])
            assert r.status_code == 201
    reg = TrainingRegistry.for_settings(engine_settings)
    a = reg.register(make_ranker(), scope=TENANT)
    b = reg.register(make_ranker(), scope=OTHER_TENANT)
    shared = reg.register(make_ranker())

    listed = c.get("/v1/models", headers=headers["admin"]).json()
    assert [m["id"] for m in listed["data"]] == [a.id] and listed["serving"] == "transparent-1"
    assert [m["id"] for m in c.get("/v1/models", headers=headers["other"]).json()["data"]] == [b.id]
    assert c.get("/v1/models", headers=headers["platform"]).status_code == 403  # reads: admin and officer
    for model in (b.id, shared.id):  # another tenant's model, or the operator's: not found here
        assert c.post(f"/v1/models/{model}/activate", headers=headers["admin"]).status_code == 404
        assert c.post(f"/v1/models/{model}/trial", headers=headers["admin"]).status_code == 404
    assert reg.active_id(scope=OTHER_TENANT) is None and reg.trial(scope=OTHER_TENANT) is None

    ok = c.post(f"/v1/models/{a.id}/activate", headers=headers["admin"])
    assert ok.status_code == 200 and ok.json()["serving"] == a.id
    assert _served(c, headers["admin"])[0] == a.id
    assert _served(c, headers["other"])[0] == "transparent-1"  # B is served what it was served
    # B's rollback acts on B's scope: nothing was activated there, and A keeps its ranker
    assert c.post("/v1/models/rollback", headers=headers["other"]).status_code == 422
    assert c.get("/v1/models/trial", headers=headers["other"]).status_code == 404
    assert _served(c, headers["admin"])[0] == a.id

    # B's trial interleaves B's lists only
    started = c.post(f"/v1/models/{b.id}/trial", headers=headers["other"])
    assert started.status_code == 201 and started.json()["incumbent"] == "transparent-1"
    assert c.get("/v1/models/trial", headers=headers["admin"]).status_code == 404
    assert c.post("/v1/models/trial/stop", headers=headers["admin"]).status_code == 404
    assert _served(c, headers["admin"]) == (a.id, None)
    assert {_served(c, headers["other"])[1] for _ in range(4)} == {b.id}  # trial_share is 1 in tests

    # the operator's shared ranker serves every tenant without one of its own
    reg.activate(shared.id)
    install_active_ranker(c.app.state.app_state.matcher, engine_settings)
    assert _served(c, headers["admin"])[0] == a.id
    assert _served(c, headers["other"])[0] == shared.id
    back = c.post("/v1/models/rollback", headers=headers["admin"])
    assert back.status_code == 200 and back.json() == {"active": None, "serving": shared.id}
    assert reg.active_id() == shared.id  # a tenant's rollback never touches the shared scope


def test_training_for_one_tenant_never_reads_another_tenants_feedback(engine):
    from training.data.labels import from_feedback

    with Session(engine) as s:
        for tenant, base in ((TENANT, 100), (OTHER_TENANT, 200)):
            for n in range(3):
                rid = f"req-{n}"  # the same request ids in both tenants: only the tenant tells them apart
                for pos in range(1, 4):
                    features = {"relevance": 0.5, "dense": 0.1 * pos}
                    s.add(
                        Impression(
                            request_id=rid,
                            tenant_id=tenant,
                            resource_id=base + pos,
                            position=pos,
                            score=0.5,
                            features=features,
                            model_version="transparent-1",
                        )
                    )
                s.add(
                    Feedback(
                        tenant_id=tenant, request_id=rid, resource_id=base + 1 + n % 3, action="accepted"
                    )
                )
        s.commit()
        rows = from_feedback(s, tenant=TENANT)
        everyone = from_feedback(s)
    assert len(rows) == 9 and rows.n_positive == 3
    assert {g.split(":")[0] for g in rows.groups} == {TENANT}
    assert {int(i) for i in rows.items} == {101, 102, 103}
    assert len(everyone) == 18  # the operator's explicit --shared reads both


def test_a_tenants_trial_is_judged_on_its_own_lists_only(engine, tmp_path, make_ranker):
    from matcher.models.trial import evaluate_trial

    reg = TrainingRegistry(tmp_path / "registry")
    v = reg.register(make_ranker(), scope=TENANT)
    reg.start_trial(v.id, incumbent="transparent-1")
    with Session(engine) as s:
        # A's users chose the candidate's item, B's the incumbent's, in lists that name the same model
        for tenant, n_lists in ((TENANT, 3), (OTHER_TENANT, 5)):
            for n in range(n_lists):
                rid = f"{tenant}-{n}"
                s.add(
                    Impression(
                        request_id=rid,
                        tenant_id=tenant,
                        resource_id=1,
                        position=1,
                        score=0.9,
                        model_version=v.id,
                    )
                )
                s.add(
                    Impression(
                        request_id=rid,
                        tenant_id=tenant,
                        resource_id=2,
                        position=2,
                        score=0.8,
                        model_version="transparent-1",
                    )
                )
                pick = 1 if tenant == TENANT else 2
                s.add(Feedback(tenant_id=tenant, request_id=rid, resource_id=pick, action="accepted"))
        s.commit()
        verdict = evaluate_trial(s, reg, scope=TENANT, act=False)
        assert evaluate_trial(s, reg, scope=OTHER_TENANT, act=False) is None  # B runs no trial
    assert (verdict.lists, verdict.wins, verdict.losses) == (3, 3, 0)


def test_a_registry_of_the_single_scope_layout_keeps_serving_as_the_shared_scope(
    tmp_path, settings, make_ranker
):
    reg = TrainingRegistry.for_settings(settings)
    old, served = reg.register(make_ranker()), reg.register(make_ranker())
    for v in (old, served):  # manifests written before scopes existed name none
        path = reg.root / v.id / "manifest.json"
        manifest = json.loads(path.read_text())
        del manifest["scope"]
        path.write_text(json.dumps(manifest))
    state = {"active": {"ranker": served.id}, "history": {"ranker": [old.id]}, "trial": {}}
    (reg.root / "state.json").write_text(json.dumps(state))

    eng = FakeEngine()
    assert install_active_ranker(eng, settings) == served.id
    assert eng.ranker_for(TENANT).version == served.id and eng.ranker_for(OTHER_TENANT).version == served.id
    assert reg.active_id(scope=TENANT) is None and reg.list(scope=TENANT) == []
    # the shared scope's history came along: a rollback (the operator's) goes back to the older one
    assert reg.rollback(scope=SHARED).id == old.id
    assert json.loads((reg.root / "state.json").read_text())["scopes"][SHARED]["active"] == {"ranker": old.id}
