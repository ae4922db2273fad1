"""`matcher eval` on a project set given by name or bench path, and its one-line errors."""

from __future__ import annotations

import json

import pytest

from matcher.cli.main import main
from tests.training.test_project_sets import fake_bench

IDS = ["nd-csl-00001", "nd-csl-00049", "nd-csl-00072"]  # 00072 is marked degenerate


@pytest.fixture(autouse=True)
def env(tmp_path, monkeypatch, encoder_dir):
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MATCHER_ENCODER", str(encoder_dir))
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


def test_eval_scores_the_english_set_built_on_the_public_one(tmp_path, capsys):
    # each judged record holds its query's English text: the lexical side must rank it first
    bench = fake_bench(tmp_path, IDS)
    assert cli("eval", str(bench / "csl-need2doc-en"), "--split", "dev", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == "csl-need2doc-en"
    assert result["queries"] == 3 and result["documents"] == 4
    assert result["ndcg@10"] == 1.0
    assert result["without_degenerate"]["queries"] == 2

    # by name, with the bench data directory given; a record that no longer matches lowers the score
    other = fake_bench(
        tmp_path / "other", IDS, doc_text=lambda q: "电池 隔膜" if q["_id"] == IDS[1] else q["text"]
    )
    assert cli("eval", "csl-need2doc-en", "--split", "dev", "--json", "--bench-data", str(other)) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["queries"] == 3 and result["ndcg@10"] < 1.0
    assert result["without_degenerate"]["ndcg@10"] < result["ndcg@10"]


def test_eval_without_the_public_set_exits_with_one_line(tmp_path, capsys):
    assert cli("eval", "csl-need2doc-en", "--split", "dev", "--bench-data", str(tmp_path / "none")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "csl-need2doc-dev" in err[0] and str(tmp_path / "none") in err[0]
    assert cli("eval", str(tmp_path / "no-such-set"), "--split", "dev") == 1
    assert "no dataset directory at" in capsys.readouterr().err
