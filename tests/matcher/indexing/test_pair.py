"""IndexPair persistence: the stamps saved with each index version are the ones start-up trusts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from embeddings.text import lexical_terms
from matcher.domain.tables import Resource
from matcher.indexing.documents import resource_document

BODY = {
    "kind": "result",
    "description": "高导热薄膜的卷对卷制备方法，用于手机散热。",
    "industries": ["二维材料"],
    "details": {"holder": "某大学", "trl": 6},
}
TITLES = ["石墨烯导热膜制备技术", "碳纤维复合材料成型工艺", "锂电池隔膜涂覆设备"]
NEW_TITLE = "钙钛矿叠层太阳能电池组件"


def _flip_a_payload_byte(side: Path) -> Path:
    """Damage the newest saved version of one index so that it fails its checksum (same size)."""
    newest = side / (side / "CURRENT").read_text().strip()
    payload = max(
        (p for p in newest.iterdir() if p.suffix != ".json"),  # not the manifest, not the stamps
        key=lambda p: p.stat().st_size,
    )
    raw = bytearray(payload.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    payload.write_bytes(bytes(raw))
    return newest


@pytest.mark.parametrize("damaged", [("vectors", "lexical"), ("vectors",), ("lexical",)])
def test_fallback_to_an_older_version_reindexes_what_changed_after_it(
    engine_settings, engine, headers, caplog, damaged
):
    admin = headers["admin"]
    with TestClient(create_app(engine_settings)) as c:  # closing saves version 1 of every index
        made = [c.post("/v1/resources", json=dict(BODY, title=t), headers=admin).json()["id"] for t in TITLES]
    rid = made[0]
    with TestClient(create_app(engine_settings)) as c:  # closing saves version 2
        r = c.patch(f"/v1/resources/{rid}", json={"title": NEW_TITLE}, headers=admin)
        assert r.status_code == 200, r.text
    supply = engine_settings.index_dir / "supply"
    bad = {side: _flip_a_payload_byte(supply / side) for side in damaged}

    with caplog.at_level("WARNING"), TestClient(create_app(engine_settings)) as c:
        eng = c.app.state.app_state.matcher
        for side, version in bad.items():
            assert f"index in {supply / side}: current version unusable" in caplog.text
            assert f"{version.name}: " in caplog.text and "fails its checksum" in caplog.text
        # both indexes hold the record as the store has it now
        assert eng.supply.lexical.matched_terms(lexical_terms(NEW_TITLE), rid)
        with Session(engine) as s:
            row = s.get(Resource, rid)
            assert row is not None and row.title == NEW_TITLE
            expected = eng.encoder.encode_documents([resource_document(row, eng.taxonomy)])[0]
        assert np.allclose(eng.supply.dense.get_vectors(np.array([rid]))[0], expected, atol=1e-5)
        # and the match path finds it by its new exact title
        res = c.post(
            "/v1/match", json={"text": NEW_TITLE, "k": 5, "min_score": 0, "per_provider": 0}, headers=admin
        )
        assert res.status_code == 200, res.text
        assert res.json()["matches"][0]["resource"]["id"] == rid
        assert set(eng.supply.dense.ids().tolist()) == set(made) == set(eng.supply.lexical.ids().tolist())
