"""csl-need2doc-en: the project's English queries, built at run time on the public csl-need2doc-dev set."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from training.data.beir import BeirFormatError, load_qrels, load_queries
from training.data.project_sets import (
    PublicSetMissing,
    degenerate_ids,
    load_set,
    project_queries,
)

NAME = "csl-need2doc-en"
PUBLIC_BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bench"
CJK = re.compile(
    r"[\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)


@pytest.fixture
def public_bench() -> Path:
    """The real public sets; the tests that need them are skipped where they are absent."""
    if not (PUBLIC_BENCH / "csl-need2doc-dev").is_dir():
        pytest.skip(f"the public set csl-need2doc-dev is not at {PUBLIC_BENCH}")
    return PUBLIC_BENCH


def fake_bench(root: Path, ids: list[str], *, doc_text=lambda q: q["text"]) -> Path:
    """A stand-in csl-need2doc-dev holding one document per given query id (plus one distractor), judged."""
    rows = {r["_id"]: r for r in project_queries(NAME)}
    public = root / "bench" / "csl-need2doc-dev"
    (public / "qrels").mkdir(parents=True)
    docs = [{"_id": qid.removeprefix("nd-"), "title": "", "text": doc_text(rows[qid])} for qid in ids]
    docs.append({"_id": "csl-distractor", "title": "", "text": "an unrelated record about something else"})
    (public / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    (public / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": "公开集的中文需求"}) + "\n" for q in ids), encoding="utf-8"
    )
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{q.removeprefix('nd-')}\t1\n" for q in ids)
    (public / "qrels" / "dev.tsv").write_text(qrels, encoding="utf-8")
    return root / "bench"


def test_the_english_queries_are_unique_english_and_mark_few_degenerate():
    rows = project_queries(NAME)
    ids = [r["_id"] for r in rows]
    assert len(ids) == 267 and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"nd-csl-\d{5}", q) for q in ids)
    with_cjk = [r["_id"] for r in rows if CJK.search(r["text"])]
    assert with_cjk == []
    assert all(r["text"].strip() and len(r["text"]) < 300 for r in rows)
    degenerate = degenerate_ids(NAME)
    assert "nd-csl-00072" in degenerate and 0 < len(degenerate) < 20
    assert degenerate_ids("/somewhere/csl-need2doc-dev") == degenerate  # the public set shares the ids
    assert degenerate_ids("cranfield") == set()


def test_every_query_id_is_a_judged_query_of_the_public_set(public_bench):
    public = public_bench / "csl-need2doc-dev"
    ids = {r["_id"] for r in project_queries(NAME)}
    assert ids == set(load_queries(public)) == set(load_qrels(public, "dev"))


def test_the_loader_builds_the_set_from_the_public_corpus_and_qrels(tmp_path):
    bench = fake_bench(tmp_path, ["nd-csl-00001", "nd-csl-00072"])
    english = {r["_id"]: r["text"] for r in project_queries(NAME)}
    for source, bench_dir in ((NAME, bench), (bench / NAME, None)):
        corpus, queries, qrels = load_set(source, "dev", bench_dir)
        assert queries == {q: english[q] for q in ("nd-csl-00001", "nd-csl-00072")}
        assert qrels == {"nd-csl-00001": {"csl-00001": 1}, "nd-csl-00072": {"csl-00072": 1}}
        assert set(corpus) == {"csl-00001", "csl-00072", "csl-distractor"}


def test_a_judged_query_without_english_text_is_an_error(tmp_path):
    bench = fake_bench(tmp_path, ["nd-csl-00001"])
    with (bench / "csl-need2doc-dev" / "qrels" / "dev.tsv").open("a") as f:
        f.write("nd-csl-99999\tcsl-00001\t1\n")
    with pytest.raises(BeirFormatError, match="1 queries judged .* have no text here .*nd-csl-99999"):
        load_set(NAME, "dev", bench)


def test_without_the_public_set_the_loader_says_so_in_one_line(tmp_path):
    with pytest.raises(PublicSetMissing) as exc:
        load_set(tmp_path / "bench" / NAME, "dev")
    message = str(exc.value)
    assert "\n" not in message
    assert "csl-need2doc-dev" in message and str(tmp_path / "bench" / "csl-need2doc-dev") in message


def test_the_built_set_matches_the_public_set(public_bench):
    corpus, queries, qrels = load_set(NAME, "dev", public_bench)
    public_corpus, public_queries, public_qrels = load_set(public_bench / "csl-need2doc-dev", "dev")
    assert qrels == public_qrels and len(corpus) == len(public_corpus)
    assert set(queries) == set(public_queries) and not any(CJK.search(t) for t in queries.values())
