"""The engine as a cache of the store: restart, reconcile, model mismatch, refusal to start."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, delete

from api.app import create_app
from matcher.domain.tables import Resource
from matcher.models.encoder import EncoderUnavailable

BODY = {
    "kind": "result",
    "title": "石墨烯导热膜制备技术",
    "description": "高导热石墨烯薄膜的卷对卷制备方法，用于手机散热。",
    "industries": ["二维材料"],
    "details": {"holder": "某大学", "trl": 6},
}


def _ids(client, headers, text="石墨烯导热膜"):
    r = client.post(
        "/v1/match", json={"text": text, "k": 50, "min_score": 0, "per_provider": 0}, headers=headers
    )
    assert r.status_code == 200, r.text
    return {m["resource"]["id"] for m in r.json()["matches"]}


def test_restart_reconciles_indexes_with_the_store(engine_settings, engine, headers):
    with TestClient(create_app(engine_settings)) as c:
        made = [
            c.post(
                "/v1/resources", json=dict(BODY, title=f"石墨烯导热膜 {i}"), headers=headers["admin"]
            ).json()["id"]
            for i in range(5)
        ]
    # while the service is down the store changes behind the indexes' back
    with Session(engine) as s:
        s.exec(delete(Resource).where(Resource.id == made[0]))
        s.commit()
    with TestClient(create_app(engine_settings)) as c:
        state = c.app.state.app_state
        assert set(state.matcher.supply.dense.ids().tolist()) == set(made[1:])
        assert set(state.matcher.supply.lexical.ids().tolist()) == set(made[1:])
        assert _ids(c, headers["admin"]) == set(made[1:])


def _mark_built_by_another_model(settings) -> None:
    (manifest,) = (settings.index_dir / "supply" / "vectors").glob("*/manifest.json")
    manifest.write_text(manifest.read_text().replace('"model_id": "', '"model_id": "other-model-'))


def test_index_from_another_model_refuses_to_start_until_reindexed(engine_settings, engine, headers):
    from matcher.indexing.pair import IndexBuiltByOtherModel

    with TestClient(create_app(engine_settings)) as c:
        rid = c.post("/v1/resources", json=BODY, headers=headers["admin"]).json()["id"]
    _mark_built_by_another_model(engine_settings)
    with pytest.raises(IndexBuiltByOtherModel) as info:
        with TestClient(create_app(engine_settings)):
            pass
    assert "matcher reindex" in str(info.value) and "\n" not in str(info.value)
    # what was saved is kept as it was: nothing is rebuilt unless asked
    (manifest,) = (engine_settings.index_dir / "supply" / "vectors").glob("*/manifest.json")
    assert "other-model-" in manifest.read_text()
    rebuilding = engine_settings.model_copy(update={"reindex_on_model_change": True})
    with TestClient(create_app(rebuilding)) as c:
        assert _ids(c, headers["admin"]) == {rid}


def test_lexical_index_tokenised_another_way_is_rebuilt(engine_settings, engine, headers):
    from embeddings.persist import read_manifest

    with TestClient(create_app(engine_settings)) as c:
        rid = c.post("/v1/resources", json=BODY, headers=headers["admin"]).json()["id"]
    lexical = engine_settings.index_dir / "supply" / "lexical"
    (manifest,) = lexical.glob("*/manifest.json")
    manifest.write_text(manifest.read_text().replace("lexical_terms/v2", "tokenize/v1"))
    assert read_manifest(lexical).model_id == "embeddings.text.tokenize/v1"
    with TestClient(create_app(engine_settings)) as c:
        assert c.app.state.app_state.matcher.supply.lexical.tokenizer_id.endswith("lexical_terms/v2")
        # 墨烯 shares no jieba word with 石墨烯 (石墨 + 烯): only the rebuilt bigram index finds it
        assert _ids(c, headers["admin"], text="墨烯导热") == {rid}


def test_missing_model_path_refuses_to_start(settings, engine, tmp_path):
    bad = settings.model_copy(update={"encoder": str(tmp_path / "no-such-model")})
    with pytest.raises(EncoderUnavailable) as info:
        with TestClient(create_app(bad)):
            pass
    assert "no-such-model" in str(info.value)


def test_default_encoder_missing_says_how_to_make_it(settings, engine):
    with pytest.raises(EncoderUnavailable) as info:
        with TestClient(create_app(settings)):
            pass
    assert "matcher encoder build" in str(info.value)


def test_encoder_is_switched_without_stopping_and_catches_up_writes(
    engine_settings, engine, headers, tmp_path
):
    import shutil

    from embeddings.encoders.sentence import load_encoder

    with TestClient(create_app(engine_settings)) as c:
        made = [
            c.post(
                "/v1/resources", json=dict(BODY, title=f"石墨烯导热膜 {i}"), headers=headers["admin"]
            ).json()["id"]
            for i in range(3)
        ]
        eng = c.app.state.app_state.matcher
        old_pair = eng.supply
        # the same weights in another directory: another model id, so every index must be rebuilt
        other = tmp_path / "encoder-next"
        shutil.copytree(engine_settings.encoder, other)
        new_encoder = load_encoder(other)
        assert new_encoder.model_id != eng.encoder.model_id

        # a write lands while the new indexes are being built: the locked catch-up must index it
        sync = eng.indexer._sync
        late: list[int] = []

        def sync_with_a_write_in_between(supply, demand, **kw):
            out = sync(supply, demand, **kw)
            if not late:
                r = c.post(
                    "/v1/resources", json=dict(BODY, title="石墨烯导热膜 late"), headers=headers["admin"]
                )
                late.append(r.json()["id"])
            return out

        eng.indexer._sync = sync_with_a_write_in_between
        report = eng.swap_encoder(new_encoder)
        eng.indexer._sync = sync
        assert report["to"] == new_encoder.model_id and report["caught_up"] >= 1
        assert eng.encoder is new_encoder and eng.supply is not old_pair
        assert eng.supply.encoder is new_encoder and eng.demand.encoder is new_encoder
        want = set(made) | set(late)
        assert set(eng.supply.dense.ids().tolist()) == want == set(eng.supply.lexical.ids().tolist())
        assert _ids(c, headers["admin"]) == want
    # the saved indexes are the new model's: a restart with it re-indexes nothing
    with TestClient(create_app(engine_settings.model_copy(update={"encoder": str(other)}))) as c:
        eng = c.app.state.app_state.matcher
        assert eng.supply.dense.model_id == new_encoder.model_id
        assert _ids(c, headers["admin"]) == want
