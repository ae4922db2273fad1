"""Impressions logged from a match outcome: one row per shown resource, in rank order, with its features and the
version of the ranker that placed it (per item in an interleaved list)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from matcher.domain.tables import Impression
from matcher.indexing.catalog import Meta
from matcher.matching.fit import Ask
from matcher.matching.interleave import CANDIDATE, INCUMBENT
from matcher.matching.pipeline import MatchOutcome
from matcher.matching.retrieval import Candidate
from matcher.outcomes.impressions import log_impressions
from tests.conftest import TENANT

pytestmark = pytest.mark.usefixtures("store")


def _candidate(rid: int, score: float) -> Candidate:
    meta = Meta(
        id=rid,
        kind="result",
        tenant=TENANT,
        public=True,
        active=True,
        title=f"r{rid}",
        industries=frozenset(),
        own_industries=(),
        region=None,
        expires=None,
    )
    return Candidate(
        id=rid,
        meta=meta,
        dense=0.5,
        lexical=0.25,
        relevance=0.4,
        fit={"industry": 1.0, "trl": None},
        score=score,
    )


def _outcome(candidates: list[Candidate], **over) -> MatchOutcome:
    fields = {
        "request_id": "req-7",
        "query_text": "量子传感",
        "ask": Ask(),
        "candidates": candidates,
        "explanations": {},
        "model_version": "transparent-1",
        "timings_ms": {},
    }
    fields.update(over)
    return MatchOutcome(**fields)


def _logged(engine) -> list[Impression]:
    with Session(engine) as s:
        return list(s.exec(select(Impression).order_by(Impression.position)))


def test_one_row_per_candidate_in_rank_order(engine):
    outcome = _outcome([_candidate(30, 0.9), _candidate(10, 0.7)], need_id=5, enterprise_id=2)
    assert log_impressions(engine, outcome, TENANT) == 2
    rows = _logged(engine)
    assert [(r.resource_id, r.position, r.score) for r in rows] == [(30, 1, 0.9), (10, 2, 0.7)]
    assert {(r.request_id, r.tenant_id, r.need_id, r.enterprise_id, r.model_version) for r in rows} == {
        ("req-7", TENANT, 5, 2, "transparent-1")
    }
    assert rows[0].features == {"dense": 0.5, "lexical": 0.25, "relevance": 0.4, "industry": 1.0, "trl": None}


def test_an_interleaved_list_logs_the_ranker_of_each_item(engine):
    outcome = _outcome(
        [_candidate(1, 0.9), _candidate(2, 0.8), _candidate(3, 0.7)],
        teams={1: INCUMBENT, 2: CANDIDATE, 3: INCUMBENT},
        trial_version="learned-3",
    )
    log_impressions(engine, outcome, TENANT)
    assert [(r.resource_id, r.model_version) for r in _logged(engine)] == [
        (1, "transparent-1"),
        (2, "learned-3"),
        (3, "transparent-1"),
    ]


def test_an_empty_outcome_logs_nothing(engine):
    assert log_impressions(engine, _outcome([]), TENANT) == 0
    assert _logged(engine) == []
