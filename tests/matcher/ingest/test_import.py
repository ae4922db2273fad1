"""Bulk import: formats and encodings, column mapping, upsert by external_id, per-row rejections, atomic rows,
limits, and the HTTP endpoint with tenant scoping."""

from __future__ import annotations

import io
import json
import re
from datetime import date, datetime

import pytest
from sqlmodel import Session, select

from matcher.domain.tables import Resource
from matcher.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from matcher.ingest import importer
from matcher.ingest.columns import load_mapping
from matcher.ingest.importer import import_file
from matcher.ingest.tabular import decode_text, detect_format
from matcher.store import bulk
from matcher.store.events import ChangeHub
from matcher.store.keys import Caller
from tests.conftest import OTHER_TENANT, TENANT, EventLog

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CALLER = Caller(tenant=TENANT, role="admin")
OTHER = Caller(tenant=OTHER_TENANT, role="admin")

CSV_ZH = (
    "编号,标题,简介,行业,地区,持有人,成熟度,转化方式,价格（万元）,有效期,备注\n"
    "R1,一种钙钛矿太阳能电池,稳定性提升的叠层电池,光伏、新材料,北京,京华理工大学,TRL 6,转让、许可,500,2030/1/1,x\n"
    "R2,工业视觉缺陷检测,基于深度学习,人工智能,北京,北辰大学,12,许可,面议,,y\n"
    ",无编号的成果,描述,芯片,上海,,3级,合作开发,1.2亿,2030年12月31日,\n"
)


def jsonl(*rows: object) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()


def run(session: Session, data: bytes, *, caller: Caller = CALLER, settings, **kw) -> importer.ImportReport:
    kw.setdefault("filename", "rows.jsonl")
    return import_file(session, caller=caller, data=data, settings=settings, **kw)


def stored(session: Session, tenant: str = TENANT) -> list[Resource]:
    session.expire_all()
    return list(session.exec(select(Resource).where(Resource.tenant_id == tenant).order_by(Resource.id)))


def fund(ext: str = "F1", **over: object) -> dict:
    row = {
        "kind": "fund",
        "external_id": ext,
        "title": "园区硬科技天使基金",
        "description": "投资早期硬科技团队",
        "industries": ["人工智能"],
        "details": {"manager": "示例资本", "stages": ["天使轮"], "ticket_min": "50万", "ticket_max": "500万"},
    }
    row.update(over)
    return row


# ---------------------------------------------------------------- upsert by external_id


@pytest.mark.usefixtures("store")
def test_jsonl_created_then_unchanged_then_updated(session, settings):
    first = run(
        session,
        jsonl(fund("F1"), fund("F2", title="Climate Fund", description="clean energy")),
        settings=settings,
    )
    assert [r.status for r in first.rows] == ["created", "created"]
    assert first.totals.created == 2 and first.encoding == "utf-8"
    rows = {r.external_id: r for r in stored(session)}
    assert rows["F1"].details["ticket_min"] == 500_000 and rows["F1"].details["stages"] == ["seed"]
    assert rows["F1"].provider == "示例资本" and rows["F1"].language == "zh"
    assert rows["F2"].language == "en"

    again = run(
        session,
        jsonl(fund("F1"), fund("F2", title="Climate Fund", description="clean energy")),
        settings=settings,
    )
    assert [r.status for r in again.rows] == ["unchanged", "unchanged"]
    assert [r.id for r in again.rows] == [rows["F1"].id, rows["F2"].id]

    changed = run(session, jsonl(fund("F1", details={"ticket_max": "800万"})), settings=settings)
    assert changed.rows[0].status == "updated" and changed.rows[0].id == rows["F1"].id
    after = {r.external_id: r for r in stored(session)}
    assert after["F1"].details["ticket_max"] == 8_000_000
    assert after["F1"].details["manager"] == "示例资本"  # details keys the row does not give are kept
    assert len(after) == 2


def test_rows_without_external_id_are_always_created(session, settings):
    row = fund()
    del row["external_id"]
    run(session, jsonl(row), settings=settings)
    report = run(session, jsonl(row), settings=settings)
    assert report.rows[0].status == "created"
    assert len(stored(session)) == 2


def test_empty_cell_clears_a_field_and_a_missing_column_keeps_it(session, settings):
    header = "编号,标题,地区,持有人,成熟度\n"
    run(
        session,
        (header + "R1,成果一,北京,京华理工大学,5\n").encode(),
        settings=settings,
        filename="a.csv",
        kind="result",
    )
    report = run(
        session, "编号,标题,成熟度\nR1,成果一,\n".encode(), settings=settings, filename="a.csv", kind="result"
    )
    assert report.rows[0].status == "updated"
    (row,) = stored(session)
    assert row.region == "北京" and row.details["holder"] == "京华理工大学"  # columns not in the file: kept
    assert "trl" not in row.details  # column in the file, cell empty: cleared


def test_an_external_id_of_another_kind_is_rejected(session, settings):
    run(session, jsonl(fund("X1")), settings=settings)
    report = run(session, jsonl({"kind": "result", "external_id": "X1", "title": "成果"}), settings=settings)
    assert report.rows[0].status == "rejected"
    assert report.rows[0].reason.startswith("kind: external_id 'X1' already names a fund")


# ---------------------------------------------------------------- CSV, encodings, XLSX


@pytest.mark.parametrize(
    "encoding,reported", [("utf-8-sig", "utf-8-sig"), ("utf-8", "utf-8"), ("gbk", "gb18030")]
)
def test_csv_with_chinese_headers_in_each_encoding(session, settings, encoding, reported):
    report = run(session, CSV_ZH.encode(encoding), settings=settings, filename="成果.csv", kind="科技成果")
    assert report.format == "csv" and report.encoding == reported
    assert report.ignored_columns == ["备注"]
    by_row = {r.row: r for r in report.rows}
    assert by_row[2].status == "created" and by_row[4].status == "created"
    assert by_row[3].status == "rejected" and by_row[3].external_id == "R2"
    assert by_row[3].reason == "details.trl: Input should be less than or equal to 9"
    rows = {r.title: r for r in stored(session)}
    r1 = rows["一种钙钛矿太阳能电池"]
    assert r1.external_id == "R1" and r1.region == "北京" and r1.valid_until == date(2030, 1, 1)
    assert r1.industries == ["photovoltaics", "new-materials"]
    assert r1.details == {
        "holder": "京华理工大学",
        "trl": 6,
        "patents": [],
        "transfer_modes": ["transfer", "license"],
        "price": 5_000_000,
    }
    other = rows["无编号的成果"]
    assert other.details["price"] == 120_000_000 and other.details["trl"] == 3
    assert other.valid_until == date(2030, 12, 31) and other.industries == ["integrated-circuits"]


def test_kind_from_a_column_and_mismatches(session, settings):
    csv = "类型,名称,运营方,设施,工位,预算,发布方,截止日期\n孵化器,共享实验室,某运营方,洁净室、动物房,120个,,,\n应用场景,医院场景,,,,200万,京华医院,2031-03-01\n基金,未知,,,,,,\n火箭,不认识,,,,,,\n"
    report = run(session, csv.encode(), settings=settings, filename="mixed.csv")
    statuses = [(r.kind, r.status) for r in report.rows]
    assert statuses[:3] == [("incubator", "created"), ("scenario", "created"), ("fund", "created")]
    assert report.rows[3].status == "rejected" and report.rows[3].reason.startswith(
        "kind: unknown kind '火箭'"
    )
    rows = {r.kind: r for r in stored(session)}
    assert (
        rows["incubator"].details["facilities"] == ["洁净室", "动物房"]
        and rows["incubator"].details["capacity"] == 120
    )
    assert rows["scenario"].details == {"owner": "京华医院", "budget": 2_000_000, "deadline": "2031-03-01"}

    forced = run(session, csv.encode(), settings=settings, filename="mixed.csv", kind="fund")
    assert forced.rows[0].reason == "kind: the row says incubator but the import is for fund"


def test_kind_missing_everywhere_is_a_row_error(session, settings):
    report = run(session, "标题\n成果\n".encode(), settings=settings, filename="a.csv")
    assert report.rows[0].reason.startswith("kind: missing")


def test_xlsx_with_numbers_and_dates(session, settings):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["外部编号", "场景名称", "场景描述", "领域", "预算（万元）", "截止日期", "发布方"])
    ws.append(
        [1001, "智慧病房监测场景", "无感监测生命体征", "医疗器械", 120, datetime(2031, 5, 1), "京华医院"]
    )
    ws.append([1002, "", "没有标题", "", None, None, None])
    ws.append([None, None, None, None, None, None, None])
    buf = io.BytesIO()
    wb.save(buf)
    report = run(session, buf.getvalue(), settings=settings, filename="场景.xlsx", kind="scenario")
    assert report.format == "xlsx"
    assert [(r.row, r.external_id, r.status) for r in report.rows] == [
        (2, "1001", "created"),
        (3, "1002", "rejected"),
    ]
    assert report.rows[1].reason == "title: required"
    (row,) = stored(session)
    assert row.details == {"owner": "京华医院", "budget": 1_200_000, "deadline": "2031-05-01"}
    # the same bytes sniffed without a name or type
    assert detect_format(buf.getvalue()) == "xlsx"


def test_custom_mapping(session, settings, tmp_path):
    path = tmp_path / "map.json"
    path.write_text(
        json.dumps({"项目": "title", "牵头单位": "@provider", "备注": None, "TRL等级": "details.trl"})
    )
    mapping = load_mapping(path)
    csv = "项目,牵头单位,TRL等级,备注,details.ip_status\n量子传感器,北辰大学,4,略,已授权\n"
    report = run(session, csv.encode(), settings=settings, filename="x.csv", kind="result", mapping=mapping)
    assert report.rows[0].status == "created" and report.ignored_columns == ["备注"]
    (row,) = stored(session)
    assert row.details == {
        "holder": "北辰大学",
        "trl": 4,
        "ip_status": "已授权",
        "patents": [],
        "transfer_modes": [],
    }
    assert row.provider == "北辰大学"
    with pytest.raises(ValidationFailed, match="unknown target 'titel'"):
        load_mapping({"x": "titel"})


def test_a_table_without_a_title_column_is_refused(session, settings):
    with pytest.raises(ValidationFailed, match="no column maps to title"):
        run(session, b"foo,bar\n1,2\n", settings=settings, filename="a.csv", kind="result")


# ---------------------------------------------------------------- rejections, duplicates, atomic rows


def test_bad_rows_are_reported_and_good_rows_land(session, settings):
    data = (
        jsonl(
            fund("G1"),
            fund("B1", details={"ticket_min": "9000万", "ticket_max": "100万"}),
            {"kind": "result", "external_id": "B2", "title": "x", "details": {"trl": 3, "colour": "red"}},
            {"kind": "result", "external_id": "B3", "title": "nul\x00"},
            fund("G2"),
        )
        + b"\n{not json\n[1, 2]\n"
    )
    report = run(session, data, settings=settings)
    got = [(r.row, r.status, r.reason) for r in report.rows]
    assert got[0] == (1, "created", None) and got[4] == (5, "created", None)
    assert got[1][1] == "rejected" and got[1][2].startswith("details: Value error, ticket_min")
    assert got[2] == (3, "rejected", "details.colour: Extra inputs are not permitted")
    assert got[3] == (4, "rejected", "title: contains a NUL character")
    assert got[5][1:] == (
        "rejected",
        "row: malformed JSON (Expecting property name enclosed in double quotes at column 2)",
    )
    assert got[6][1:] == ("rejected", "row: expected a JSON object on each line")
    assert report.totals.model_dump() == {
        "rows": 7,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 5,
    }
    assert sorted(r.external_id for r in stored(session)) == ["G1", "G2"]


def test_duplicate_external_ids_in_one_file_keep_the_first(session, settings):
    report = run(
        session, jsonl(fund("D1", title="第一"), fund("D1", title="第二"), fund("D2")), settings=settings
    )
    assert [r.status for r in report.rows] == ["created", "rejected", "created"]
    assert (
        report.rows[1].reason == "external_id: duplicate of row 1 in this file (the first occurrence is kept)"
    )
    titles = {r.external_id: r.title for r in stored(session)}
    assert titles == {"D1": "第一", "D2": "园区硬科技天使基金"}


@pytest.mark.usefixtures("store")
def test_a_crash_mid_import_leaves_no_half_written_record(session, settings, monkeypatch):
    run(session, jsonl(fund("U1", title="原标题")), settings=settings)
    real_upsert = bulk._upsert_one
    calls = {"n": 0}

    def crashing_upsert(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("disk on fire")
        return real_upsert(*args, **kwargs)

    monkeypatch.setattr(bulk, "_upsert_one", crashing_upsert)
    hub = ChangeHub()
    log = EventLog()
    hub.subscribe(log)
    rows = [fund(f"N{i}") for i in range(1, 4)] + [fund("U1", title="新标题"), fund("N5")]
    with pytest.raises(RuntimeError, match="disk on fire"):
        run(session, jsonl(*rows), settings=settings, batch_size=2, hub=hub)
    left = {r.external_id: r for r in stored(session)}
    # batches [N1, N2] and the first half of [N3, U1] ran; the crash on U1 undid N3, so only whole batches stay
    assert set(left) == {"U1", "N1", "N2"}
    assert left["U1"].title == "原标题"
    assert all(r.details["manager"] == "示例资本" and r.provider == "示例资本" for r in left.values())
    assert log.calls == [("resources_changed", [left["N1"].id, left["N2"].id])]


def test_a_batch_refused_by_the_database_is_retried_row_by_row(session, settings, monkeypatch):
    real_upsert = bulk._upsert_one

    def taken(session_, tenant, item, existing, dry_run):
        outcome, res = real_upsert(session_, tenant, item, existing, dry_run)
        if item.data.external_id == "T2" and existing is None and res is not None:
            # a concurrent writer takes T2 between our lookup and our insert
            res.external_id = "T1"
        return outcome, res

    monkeypatch.setattr(bulk, "_upsert_one", taken)
    report = run(session, jsonl(fund("T1"), fund("T2"), fund("T3")), settings=settings)
    assert [r.status for r in report.rows] == ["created", "rejected", "created"]
    assert report.rows[1].reason.startswith("database: ")
    assert sorted(r.external_id for r in stored(session)) == ["T1", "T3"]


def test_dry_run_writes_nothing(session, settings):
    run(session, jsonl(fund("E1")), settings=settings)
    report = run(session, jsonl(fund("E1", title="改"), fund("E2")), settings=settings, dry_run=True)
    assert report.dry_run and [r.status for r in report.rows] == ["updated", "created"]
    assert [r.title for r in stored(session)] == ["园区硬科技天使基金"]


def test_changed_rows_are_announced_once_after_commit(session, settings):
    hub = ChangeHub()
    log = EventLog()
    hub.subscribe(log)
    run(session, jsonl(fund("H1"), fund("H2")), settings=settings, hub=hub)
    run(session, jsonl(fund("H1"), fund("H2", title="新")), settings=settings, hub=hub)
    ids = {r.external_id: r.id for r in stored(session)}
    assert log.calls == [("resources_changed", [ids["H1"], ids["H2"]]), ("resources_changed", [ids["H2"]])]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "result", "title": "成果", "details": {"trl": 12}},
        {"kind": "result", "description": "没有标题"},
        {"kind": "fund", "title": "nul\x00", "details": {"manager": "示例资本"}},
        {"kind": "fund", "title": "基金", "details": {"ticket_min": 90_000_000, "ticket_max": 1_000_000}},
    ],
)
def test_an_imported_row_and_an_api_body_are_refused_alike(session, settings, client, headers, body):
    report = run(session, jsonl(body), settings=settings)
    problem = client.post("/v1/resources", json=body, headers=headers["admin"]).json()
    assert report.rows[0].status == "rejected" and problem["status"] == 422
    assert report.rows[0].reason == problem["detail"]


# ---------------------------------------------------------------- the file itself


def test_undecodable_bytes_are_refused_with_a_reason():
    with pytest.raises(ValidationFailed, match="cannot decode the file as text: it holds NUL bytes"):
        decode_text(b"title\n\x00\x01\x02binary")
    with pytest.raises(ValidationFailed, match="cannot decode the file as text"):
        decode_text(b"\xef\xbb\xbftitle\n\xff\xfe\xfd")


def test_unsupported_types_are_415():
    with pytest.raises(UnsupportedMediaType):
        detect_format(b"%PDF-1.7", filename="a.pdf")
    with pytest.raises(UnsupportedMediaType, match="legacy Excel"):
        detect_format(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", filename="a.xls")
    with pytest.raises(UnsupportedMediaType):
        detect_format(b"x", content_type="image/png")
    assert detect_format(b'{"a": 1}') == "jsonl"
    assert detect_format(b"a,b\n", content_type="text/csv; charset=utf-8") == "csv"


def test_a_broken_xlsx_is_422(session, settings):
    with pytest.raises(ValidationFailed, match="not a readable XLSX workbook"):
        run(session, b"PK\x03\x04not really a zip", settings=settings, filename="a.xlsx", kind="result")


def test_size_and_row_limits_are_413(session, settings):
    small = settings.model_copy(update={"max_import_bytes": 100, "max_import_rows": 2})
    with pytest.raises(PayloadTooLarge, match="limit is 100"):
        run(session, b"x" * 101, settings=small)
    with pytest.raises(PayloadTooLarge, match="more than 2 rows"):
        run(session, b"title\na\nb\nc\n", settings=small, filename="a.csv", kind="result")
    assert stored(session) == []


def test_unknown_kind_option_is_refused(session, settings):
    with pytest.raises(ValidationFailed, match="kind: unknown kind 'rocket'"):
        run(session, jsonl(fund()), settings=settings, kind="rocket")


# ---------------------------------------------------------------- HTTP


def test_http_multipart_import_and_report(client, headers, events):
    files = {"file": ("成果.csv", CSV_ZH.encode("gbk"), "text/csv")}
    resp = client.post(
        "/v1/resources:import", params={"kind": "result"}, files=files, headers=headers["officer"]
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["encoding"] == "gb18030" and body["totals"] == {
        "rows": 3,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
    }
    assert body["rows"][1] == {
        "row": 3,
        "external_id": "R2",
        "kind": "result",
        "status": "rejected",
        "id": None,
        "reason": "details.trl: Input should be less than or equal to 9",
    }
    created = [r["id"] for r in body["rows"] if r["status"] == "created"]
    assert events.calls == [("resources_changed", created)]
    got = client.get(f"/v1/resources/{created[0]}", headers=headers["admin"]).json()
    assert got["external_id"] == "R1" and got["details"]["price"] == 5_000_000


def test_http_raw_bodies(client, headers):
    h = {**headers["admin"], "Content-Type": "application/x-ndjson"}
    resp = client.post("/v1/resources:import", content=jsonl(fund("J1")), headers=h)
    assert resp.status_code == 200 and resp.json()["rows"][0]["status"] == "created"
    h = {**headers["admin"], "Content-Type": "text/csv"}
    resp = client.post(
        "/v1/resources:import?kind=fund&dry_run=true",
        content="标题,管理人\n基金乙,某资本\n".encode(),
        headers=h,
    )
    assert resp.json()["dry_run"] is True and resp.json()["rows"][0]["status"] == "created"

    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["kind", "title"])
    wb.active.append(["incubator", "Shared lab"])
    buf = io.BytesIO()
    wb.save(buf)
    resp = client.post(
        "/v1/resources:import", content=buf.getvalue(), headers={**headers["admin"], "Content-Type": XLSX}
    )
    assert resp.json()["rows"][0]["status"] == "created"


def test_http_multipart_with_mapping_and_kind_fields(client, headers):
    files = {"file": ("x.csv", "项目,牵头单位\n量子芯片,北辰大学\n".encode(), "application/octet-stream")}
    data = {"kind": "科技成果", "mapping": json.dumps({"项目": "title", "牵头单位": "@provider"})}
    resp = client.post("/v1/resources:import", files=files, data=data, headers=headers["admin"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["rows"][0]["status"] == "created"


def test_http_errors_are_problems(client, headers, settings):
    h = headers["admin"]
    resp = client.post(
        "/v1/resources:import", content=b"%PDF-1.7", headers={**h, "Content-Type": "application/pdf"}
    )
    assert resp.status_code == 415 and resp.headers["content-type"] == "application/problem+json"
    resp = client.post("/v1/resources:import", content=b"a\x00b", headers={**h, "Content-Type": "text/csv"})
    assert resp.status_code == 422 and "cannot decode the file as text" in resp.json()["detail"]
    resp = client.post(
        "/v1/resources:import?kind=rocket", content=b"title\nx\n", headers={**h, "Content-Type": "text/csv"}
    )
    # the query's kind is one of the four canonical names (the multipart field also takes synonyms)
    assert resp.status_code == 422
    assert resp.json()["detail"] == "kind: Input should be 'result', 'scenario', 'fund' or 'incubator'"
    resp = client.post("/v1/resources:import", files={"other": ("a.csv", b"title\nx\n")}, headers=h)
    assert resp.status_code == 422 and resp.json()["detail"].startswith("other: unknown form field")
    resp = client.post("/v1/resources:import", files={"kind": (None, "result")}, headers=h)
    assert resp.status_code == 422 and resp.json()["detail"].startswith("file: missing")
    resp = client.post("/v1/resources:import", content=b"", headers={**h, "Content-Type": "text/csv"})
    assert resp.status_code == 422
    assert client.post("/v1/resources:import", content=b"title\nx\n").status_code == 401


def test_http_oversize_is_413(settings, engine, keys):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import bearer

    small = settings.model_copy(update={"max_import_bytes": 1_000})
    with TestClient(create_app(small, load_engine=False)) as c:
        h = {**bearer(keys.admin), "Content-Type": "text/csv"}
        resp = c.post("/v1/resources:import?kind=result", content=b"title\n" + b"x" * 2_000, headers=h)
        assert resp.status_code == 413 and resp.headers["content-type"] == "application/problem+json"
        files = {"file": ("a.csv", b"title\n" + b"x" * 2_000, "text/csv")}
        resp = c.post("/v1/resources:import?kind=result", files=files, headers=bearer(keys.admin))
        assert resp.status_code == 413


def test_http_import_is_scoped_to_the_callers_tenant(client, headers, session):
    h = {**headers["admin"], "Content-Type": "application/x-ndjson"}
    mine = client.post("/v1/resources:import", content=jsonl(fund("S1", title="A的基金")), headers=h).json()
    h_other = {**headers["other"], "Content-Type": "application/x-ndjson"}
    theirs = client.post(
        "/v1/resources:import", content=jsonl(fund("S1", title="B的基金")), headers=h_other
    ).json()
    assert mine["rows"][0]["status"] == "created" and theirs["rows"][0]["status"] == "created"
    assert mine["rows"][0]["id"] != theirs["rows"][0]["id"]
    assert [r.title for r in stored(session, TENANT)] == ["A的基金"]
    assert [r.title for r in stored(session, OTHER_TENANT)] == ["B的基金"]


def test_http_import_may_exceed_the_json_body_limit(settings, engine, keys):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import bearer

    roomy = settings.model_copy(update={"max_body_bytes": 1_000, "max_import_bytes": 100_000})
    rows = jsonl(*[fund(f"L{i}", description="长描述" * 50) for i in range(20)])
    assert 1_000 < len(rows) < 100_000
    with TestClient(create_app(roomy, load_engine=False)) as c:
        h = {**bearer(keys.admin), "Content-Type": "application/x-ndjson"}
        resp = c.post("/v1/resources:import", content=rows, headers=h)
        assert resp.status_code == 200, resp.text
        assert resp.json()["totals"]["created"] == 20


def test_only_the_store_announces_changes():
    """Change events come from matcher/store alone: the importer and the API hand the hub to the store."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    announce = re.compile(r"\.(resources|demand)_(changed|removed)\(")
    offenders = [
        str(path.relative_to(root))
        for path in [*(root / "api").rglob("*.py"), *(root / "matcher" / "ingest").rglob("*.py")]
        if announce.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
