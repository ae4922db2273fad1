"""The reverse-direction benchmark: its labels name demo records, broken label files are refused with the line,
and `matcher eval --reverse` scores the pipeline against lexical alone."""

from __future__ import annotations

import json

import pytest

from matcher.cli.main import main
from matcher.demo.dataset import RESOURCE_FILES, own_records
from training.evaluation.reverse_eval import (
    CASE,
    VARIANTS,
    ReverseQrelsError,
    load_reverse_labels,
    load_reverse_qrels,
)


def _demo_targets() -> set[str]:
    out = {e["external_id"] for e in own_records("enterprises")}
    return out | {f"{n['enterprise']}#{n['title']}" for n in own_records("needs")}


def test_every_label_names_a_demo_record_and_the_elderly_care_case_is_in():
    qrels = load_reverse_qrels()
    queries = {r["external_id"]: r for name in RESOURCE_FILES for r in own_records(name)}
    targets = _demo_targets()
    assert len(qrels) >= 50
    for query, fits in qrels.items():
        assert query in queries, query
        assert fits and set(fits) <= targets, query
        assert all(g in (1, 2) for g in fits.values()), query
    case = qrels[CASE]
    assert queries[CASE]["title"] == "社区养老院跌倒检测与夜间看护场景"
    assert case["demo-enterprise-e41"] == 2 and case["demo-enterprise-e43"] == 2
    # the distractors that share its words (跌倒, 部署, 场景) are not fits
    assert "demo-enterprise-e44" not in case and "demo-enterprise-e10" not in case
    # queries whose fits describe themselves in other words or the other language are a group of their own
    _, groups = load_reverse_labels()
    assert set(groups.values()) == {"other-words"} and len(groups) >= 8


@pytest.mark.parametrize(
    "line,message",
    [
        ("not json", "line 2: expected"),
        ('{"query": "q", "fits": {"t": 3}}', "line 2: expected"),
        ('{"query": "q", "fits": ["t"]}', "line 2: expected"),
        ('{"query": "q", "fits": {"t": 1}, "group": 7}', "line 2: expected"),
        ('{"query": "demo-scenario-01", "fits": {}}', "line 2: query demo-scenario-01 is labelled twice"),
    ],
)
def test_broken_label_files_are_refused_with_the_line(tmp_path, line, message):
    path = tmp_path / "qrels.jsonl"
    path.write_text('{"query": "demo-scenario-01", "fits": {"demo-enterprise-e01": 2}}\n' + line + "\n")
    with pytest.raises(ReverseQrelsError, match=message):
        load_reverse_qrels(path)


def _cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


@pytest.mark.parametrize(
    "args,message",
    [
        (["eval"], "error: give a dataset directory, or --reverse (not both)"),
        (["eval", "{tmp}", "--reverse"], "error: give a dataset directory, or --reverse (not both)"),
        (["eval", "--reverse", "--qrels", "{tmp}/none.jsonl"], "error: no labels file at {tmp}/none.jsonl"),
    ],
)
def test_eval_refuses_unusable_arguments_with_one_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "data"))
    assert _cli(*[a.format(tmp=tmp_path) for a in args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [message.format(tmp=tmp_path)]


@pytest.mark.slow
def test_the_reverse_benchmark_scores_every_variant(tmp_path, monkeypatch, capsys, encoder_dir):
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MATCHER_ENCODER", str(encoder_dir))
    assert _cli("eval", "--reverse") == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["queries"] == len(load_reverse_qrels())
    for variant in VARIANTS:
        assert 0.0 < report[variant]["ndcg"] <= 1.0
        assert 0.0 < report["group:other-words"][variant]["ndcg"] <= 1.0
    gain = report["pipeline_minus_lexical_ndcg@10"]
    assert gain["ci95"][0] <= gain["mean"] <= gain["ci95"][1]
    assert report["pipeline"]["ndcg"] - report["lexical"]["ndcg"] == pytest.approx(gain["mean"], abs=2e-3)
    # the elderly-care scenario: the radar fall-detection company (or its pilot need) leads the list
    assert report["case"]["pipeline"][0].startswith("demo-enterprise-e41")
