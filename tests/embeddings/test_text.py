"""Text normalisation, tokenisation and highlight spans."""

from __future__ import annotations

from embeddings.text import find_spans, normalize, tokenize


def test_normalize_folds_width_case_and_traditional_characters() -> None:
    assert normalize("ＡＢＣ  電池\tTest") == "abc 电池 test"


def test_find_spans_point_into_the_original_text() -> None:
    text = "高導熱石墨烯薄膜的卷對卷製備，用於手機散熱。Solid-state Batteries for EVs"
    spans = find_spans(text, tokenize("石墨烯 散热 battery"))
    assert [(t, text[a:b]) for t, a, b in spans] == [
        ("石墨", "石墨"),
        ("烯", "烯"),
        ("散热", "散熱"),
        ("batteri", "Batteries"),
    ]


def test_find_spans_prefers_the_longer_term_and_never_overlaps() -> None:
    text = "储能电池组与电池管理"
    spans = find_spans(text, ["电池", "电池组", "池"])
    assert [(t, text[a:b]) for t, a, b in spans] == [("电池组", "电池组"), ("电池", "电池")]
    ends = [b for _, _, b in spans]
    starts = [a for _, a, _ in spans]
    assert all(s >= e for s, e in zip(starts[1:], ends[:-1], strict=False))


def test_find_spans_matches_latin_words_whole_and_skips_stop_words() -> None:
    assert find_spans("the battery and the batteries", ["batteri", "the"]) == [
        ("batteri", 4, 11),
        ("batteri", 20, 29),
    ]
    assert find_spans("", ["x"]) == [] and find_spans("text", []) == []
