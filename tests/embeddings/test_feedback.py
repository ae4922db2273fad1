"""Relevance feedback (RM3) on the lexical index: weighted queries and the expansion rule."""

from __future__ import annotations

import pytest

from embeddings.lexical.bm25 import LexicalIndex
from embeddings.lexical.feedback import FeedbackConfig, expand_query
from embeddings.text import lexical_terms


def _index(docs: dict[int, str]) -> LexicalIndex:
    idx = LexicalIndex()
    idx.upsert_many(list(docs), [lexical_terms(t) for t in docs.values()])
    return idx


AERO = {
    1: "boundary layer transition on a heated flat plate in supersonic flow",
    2: "heat transfer in the laminar boundary layer of a supersonic flat plate",
    3: "transition of the boundary layer measured with heat transfer gauges in supersonic flow",
    4: "buckling of thin cylindrical shells under axial compression",
    5: "vibration of cylindrical shells with stiffeners",
    6: "heat transfer gauges for hypersonic wind tunnels",
}


def test_weighted_query_scores_scale_with_weights() -> None:
    idx = _index(AERO)
    plain = dict(idx.search(lexical_terms("heat transfer"), 10))
    doubled = dict(idx.search({t: 2.0 for t in lexical_terms("heat transfer")}, 10))
    assert plain.keys() == doubled.keys()
    for doc, score in plain.items():
        assert doubled[doc] == pytest.approx(2 * score, rel=1e-5)
    # a weight of zero or an unknown term contributes nothing
    assert idx.search({"shell": 0.0, "nosuchterm": 3.0}, 10) == []


def test_expansion_reaches_a_document_without_the_query_words() -> None:
    idx = _index(AERO)
    terms = lexical_terms("boundary layer transition")
    hits = idx.search(terms, 10)
    assert 6 not in dict(hits)  # the gauges for hypersonic tunnels share no query word
    expanded = expand_query(idx, terms, hits, FeedbackConfig(docs=3, terms=10, mix=0.5))
    assert expanded is not None
    assert sum(expanded.values()) == pytest.approx(1.0)
    assert all(expanded[t] > 0 for t in terms)  # the query keeps its own words
    assert expanded.keys() - set(terms)  # and gains the feedback documents' words
    assert 6 in dict(idx.search(expanded, 10))  # heat transfer gauges, found through the feedback words
    # the shells documents lend no word: they were not among the feedback documents
    assert not {t for t in expanded if t.startswith(("buckl", "cylindr"))}


def test_no_expansion_from_chinese_feedback_documents_or_without_hits() -> None:
    idx = _index({1: "锂电池 热失控 预警", 2: "锂电池 热管理 液冷", 3: "battery thermal runaway"})
    terms = lexical_terms("battery")
    hits = idx.search(lexical_terms("battery 锂电池"), 10)
    assert hits[0][0] in (1, 2)
    assert expand_query(idx, terms, hits) is None  # mostly Chinese feedback: not expanded
    assert expand_query(idx, terms, []) is None
    assert expand_query(idx, [], idx.search(terms, 10)) is None


def test_doc_terms_and_frequencies_skip_unknown_documents() -> None:
    idx = _index(AERO)
    got = idx.doc_terms([4, 99])
    assert len(got) == 1 and "shell" in got[0][0]
    idx.remove(4)
    assert idx.doc_terms([4]) == []
    df, n = idx.doc_frequencies(["shell", "nosuchterm"])
    assert n == 5 and df == {"shell": 1}
