"""Crafted nesting: a row nested thousands deep is rejected on its own, with a readable reason, in every format
and through the HTTP endpoint; the other rows of the file still land."""

from __future__ import annotations

import json

import pytest

from matcher.errors import ValidationFailed
from matcher.ingest import bounded_json
from matcher.ingest.columns import load_mapping
from tests.matcher.ingest.test_import import fund, jsonl, run, stored

REASON = f"nested deeper than {bounded_json.MAX_DEPTH} levels"


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def deep_row(depth: int) -> str:
    """A fund row whose details hold a list nested `depth` deep, as raw JSON text (json.dumps cannot build it)."""
    row = json.dumps(fund("DEEP"), ensure_ascii=False)
    return row[:-1] + f', "deep": {nested(depth)}}}'


# ---------------------------------------------------------------- the bounded parser


@pytest.mark.parametrize("depth", [bounded_json.MAX_DEPTH + 1, 900, 100_000])
def test_loads_refuses_deep_values_at_any_depth(depth):
    with pytest.raises(bounded_json.TooDeep, match=REASON):
        bounded_json.loads(nested(depth))


def test_loads_keeps_values_within_the_limit_and_malformed_text_is_still_malformed():
    text = nested(bounded_json.MAX_DEPTH)
    assert bounded_json.loads(text) == json.loads(text)
    with pytest.raises(json.JSONDecodeError):
        bounded_json.loads("{not json")


def test_loads_rows_reads_ordinary_documents_as_json_does():
    for doc in (
        '[{"a": [1, {"b": "]"}]}, 2, "x"]',
        '{"data": [{"a": 1}], "n": {"m": [1]}}',
        "[]",
        "{}",
        " 3 ",
    ):
        assert bounded_json.loads_rows(doc) == json.loads(doc)
    for bad in ("[1, 2", "[1 2]", '{"a" 1}', "{1: 2}", "[1] x", "[1, " + nested(5000)):
        with pytest.raises(json.JSONDecodeError):
            bounded_json.loads_rows(bad)


def test_loads_rows_replaces_each_deep_row_and_skips_past_brackets_in_its_strings():
    deep = nested(50_000, '"]]]}}}["')
    rows = bounded_json.loads_rows(f'[{{"a": 1}}, {deep}, {{"b": 2}}]')
    assert rows[0] == {"a": 1} and isinstance(rows[1], bounded_json.TooDeep) and rows[2] == {"b": 2}
    wrapped = bounded_json.loads_rows(f'{{"data": [{deep}, {{"b": 2}}], "meta": {{"m": {deep}}}}}')
    assert isinstance(wrapped["data"][0], bounded_json.TooDeep) and wrapped["data"][1] == {"b": 2}
    assert isinstance(wrapped["meta"], bounded_json.TooDeep)


# ---------------------------------------------------------------- imports


@pytest.mark.parametrize("depth", [bounded_json.MAX_DEPTH + 5, 100_000])
def test_a_deep_jsonl_row_is_rejected_and_the_others_land(session, settings, depth):
    data = jsonl(fund("A1")) + b"\n" + deep_row(depth).encode() + b"\n" + jsonl(fund("A2"))
    report = run(session, data, settings=settings)
    assert [(r.row, r.status, r.reason) for r in report.rows] == [
        (1, "created", None),
        (2, "rejected", f"row: {REASON}"),
        (3, "created", None),
    ]
    assert sorted(r.external_id for r in stored(session)) == ["A1", "A2"]


@pytest.mark.parametrize("wrap", [False, True])
def test_a_deep_element_of_a_json_array_is_rejected_and_the_others_land(session, settings, wrap):
    rows = f"[{json.dumps(fund('J1'))}, {deep_row(100_000)}, {json.dumps(fund('J2'))}]"
    text = f'{{"data": {rows}}}' if wrap else rows
    report = run(session, text.encode(), settings=settings, filename="rows.json")
    assert [(r.row, r.status, r.reason) for r in report.rows] == [
        (1, "created", None),
        (2, "rejected", f"row: {REASON}"),
        (3, "created", None),
    ]
    assert sorted(r.external_id for r in stored(session)) == ["J1", "J2"]


def test_deep_json_cells_of_a_csv_are_rejected_per_row(session, settings):
    deep = nested(100_000).replace('"', '""')
    csv_text = (
        "编号,标题,简介,行业,details,基金管理人\n"
        "C1,基金一,描述,人工智能,,示例资本\n"
        f'C2,基金二,描述,"{deep}",,示例资本\n'
        f'C3,基金三,描述,人工智能,"{{""x"": {deep}}}",示例资本\n'
        f'C4,基金四,描述,人工智能,,"{deep}"\n'
        "C5,基金五,描述,人工智能,,示例资本\n"
    )
    report = run(session, csv_text.encode(), settings=settings, filename="rows.csv", kind="fund")
    got = [(r.row, r.status, r.reason) for r in report.rows]
    assert got[0] == (2, "created", None) and got[4] == (6, "created", None)
    assert got[1] == (3, "rejected", f"industries: {REASON}")
    assert got[2] == (4, "rejected", f"details: {REASON}")
    assert got[3] == (5, "rejected", f"details.manager: {REASON}")
    assert sorted(r.external_id for r in stored(session)) == ["C1", "C5"]


def test_a_deep_mapping_is_refused_with_a_reason():
    with pytest.raises(ValidationFailed, match=f"mapping: {REASON}"):
        load_mapping('{"x": ' + nested(100_000) + "}")


# ---------------------------------------------------------------- HTTP


def test_http_import_of_a_deep_row_reports_it(client, headers):
    h = {**headers["admin"], "Content-Type": "application/x-ndjson"}
    body = jsonl(fund("H1")) + b"\n" + deep_row(200_000).encode()
    resp = client.post("/v1/resources:import", content=body, headers=h)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["totals"]["created"] == 1 and report["totals"]["rejected"] == 1
    assert report["rows"][1]["reason"] == f"row: {REASON}"
    files = {"file": ("a.jsonl", jsonl(fund("H2")), "application/x-ndjson")}
    data = {"mapping": '{"x": ' + nested(200_000) + "}"}
    resp = client.post("/v1/resources:import", files=files, data=data, headers=headers["admin"])
    assert resp.status_code == 422 and REASON in resp.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/resources", "/v1/match", "/v1/enterprises", "/v1/needs"])
def test_http_json_bodies_nested_absurdly_deep_are_client_errors(client, headers, path):
    h = {**headers["admin"], "Content-Type": "application/json"}
    resp = client.post(path, content='{"title": "x", "text": ' + nested(200_000) + "}", headers=h)
    assert 400 <= resp.status_code < 500, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
