"""Kinds asked together are served together: retrieval per kind and a share of the list for each kind, so that
thousands of research results do not crowd a few funds out of a list that asked for both."""

from __future__ import annotations

import random

import pytest
from sqlmodel import Session

from embeddings.encoders.sentence import load_encoder
from matcher.domain.taxonomy import default_taxonomy
from matcher.indexing.catalog import Meta
from matcher.ingest.importer import upsert_records
from matcher.matching.engine import MatchEngine
from matcher.matching.pipeline import Trial
from matcher.matching.query import MatchQuery
from matcher.matching.ranker import TransparentRanker
from matcher.matching.retrieval import Candidate
from matcher.matching.selection import kind_quota, share_kinds
from matcher.store.keys import ensure_tenant

TENANT = "tenant-a"


def _cand(i: int, kind: str, score: float, provider: str | None = None) -> Candidate:
    meta = Meta(
        id=i,
        kind=kind,
        tenant=TENANT,
        public=True,
        active=True,
        title=str(i),
        industries=frozenset(),
        own_industries=(),
        region=None,
        expires=None,
        provider=provider,
    )
    return Candidate(id=i, meta=meta, dense=0.0, lexical=0.0, score=score)


def test_each_kind_asked_holds_its_share_and_the_order_is_kept():
    ranked = [_cand(i, "result", 1 - i / 100) for i in range(20)] + [
        _cand(100, "fund", 0.3),
        _cand(101, "fund", 0.2),
    ]
    out = share_kinds(ranked, ("result", "fund"), 0, 10)
    assert len(out) == 10 and [c.id for c in out][-2:] == [100, 101]
    assert [c.id for c in out][:8] == list(range(8))
    # a kind with more candidates than its quota gets the quota; the rest of the list goes by rank
    more = ranked + [_cand(102 + i, "fund", 0.1) for i in range(5)]
    assert sum(c.meta.kind == "fund" for c in share_kinds(more, ("result", "fund"), 0, 10)) == kind_quota(
        10, 2
    )
    # one kind asked, or no candidate of a kind: the plain best k
    assert share_kinds(ranked, ("result",), 0, 10) == ranked[:10]
    assert share_kinds(ranked[:20], ("result", "fund"), 0, 10) == ranked[:10]


def test_quota_when_the_list_is_short_and_providers_are_limited():
    ranked = [_cand(1, "result", 0.9), _cand(2, "scenario", 0.8), _cand(3, "fund", 0.1)]
    assert [c.id for c in share_kinds(ranked, ("result", "scenario", "fund"), 0, 2)] == [1, 2]
    same = [_cand(i, "result", 1 - i / 10, provider="Lab") for i in range(5)] + [_cand(9, "fund", 0.1)]
    assert [c.id for c in share_kinds(same, ("result", "fund"), 2, 5)] == [0, 1, 9]


@pytest.fixture
def crowded(engine_settings, engine):
    """300 research results that all say 'battery', and 3 funds that say it once."""
    rng = random.Random(0)
    words = ["电池", "储能", "正极", "负极", "电解质", "隔膜", "循环寿命", "快充"]
    results = [
        {
            "kind": "result",
            "external_id": f"R{i}",
            "title": f"锂电池{rng.choice(words)}技术 {i}",
            "description": "锂电池 " + " ".join(rng.choices(words, k=12)),
            "details": {"holder": f"研究所{i}"},
        }
        for i in range(300)
    ]
    funds = [
        {
            "kind": "fund",
            "external_id": f"F{i}",
            "title": f"新能源产业基金 {i}",
            "description": "投资锂电池与新能源产业链企业。",
            "details": {"manager": f"资本{i}"},
        }
        for i in range(3)
    ]
    with Session(engine) as session:
        ensure_tenant(session, TENANT)
        session.commit()
        upsert_records(session, tenant=TENANT, records=results + funds)
    eng = MatchEngine(engine_settings, engine, default_taxonomy(), load_encoder(engine_settings.encoder))
    eng.start(background_save_s=0)
    yield eng
    eng.close()


def _kinds(eng: MatchEngine, **q) -> list[str]:
    out = eng.match(MatchQuery(text="锂电池储能", k=10, min_score=0.0, **q), tenant=TENANT)
    return [c.meta.kind for c in out.candidates]


def test_results_do_not_crowd_funds_out_of_a_list_asking_for_both(crowded):
    # every kind at once (none asked): the ten best are all results
    assert "fund" not in _kinds(crowded)
    both = _kinds(crowded, kinds=("result", "fund"))
    assert both.count("fund") == 3 and both.count("result") == 7
    assert both[:7] == ["result"] * 7  # the list stays in score order
    # bundles keep their own semantics: the best `per_kind` of each kind asked
    bundled = _kinds(crowded, kinds=("result", "fund"), bundle=True, per_kind=2)
    assert sorted(bundled) == ["fund", "fund", "result", "result"]
    assert _kinds(crowded, kinds=("fund",)).count("fund") == 3


def test_an_interleaved_list_keeps_the_share_too(crowded):
    crowded.pipeline._rng.seed(1)
    crowded.trial = Trial(TransparentRanker(fit_share=0.0), share=1.0)
    out = crowded.match(
        MatchQuery(text="锂电池储能", kinds=("result", "fund"), k=10, min_score=0.0), tenant=TENANT
    )
    assert out.teams is not None and [c.meta.kind for c in out.candidates].count("fund") == 3
