"""Exports of result lists (XLSX and CSV, formula cells neutralised), the reverse view, and the overview charts."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from sqlmodel import Session, func, select

from matcher.domain.tables import Impression
from matcher.exports import safe_cell, to_csv, to_xlsx
from tests.api.ui.conftest import search, titles


def test_formula_cells_are_neutralised():
    rows = [['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tx", "plain", -3.5, None]]
    book = load_workbook(io.BytesIO(to_xlsx(["h"] * 8, rows)))
    values = [c.value for c in book.active[2]]
    assert values[:6] == ['\'=HYPERLINK("http://x")', "'+1", "'-2", "'@SUM(A1)", "'\tx", "plain"]
    assert values[6] == -3.5 and values[7] is None  # numbers stay numbers
    assert all(c.data_type != "f" for c in book.active[2])
    text = to_csv(["h"], [["=1+1"]]).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text)))[1] == ["'=1+1"]
    assert safe_cell("中文") == "中文"


def test_export_a_search_to_xlsx_and_csv(engine_client, signed, park, engine):
    csrf = signed(engine_client, "officer")
    shown = titles(search(engine_client, csrf, q="人工智能 集成电路 投资").text)
    with Session(engine) as s:
        logged = s.exec(select(func.count()).select_from(Impression)).one()
    data = {"csrf": csrf, "submitted": "1", "open_only": "1", "q": "人工智能 集成电路 投资", "k": "20"}
    r = engine_client.post("/ui/export/search", data={**data, "format": "xlsx"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(r.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("排名", "匹配度", "类型", "标题")
    assert [row[3] for row in rows[1:]] == shown
    assert all(isinstance(row[1], float) for row in rows[1:])
    r = engine_client.post("/ui/export/search", data={**data, "format": "csv"})
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [line[3] for line in lines[1:]] == shown
    with Session(engine) as s:  # an export is nobody's served list
        assert s.exec(select(func.count()).select_from(Impression)).one() == logged
    assert (
        engine_client.post("/ui/export/search", data={**data, "csrf": "x", "format": "csv"}).status_code
        == 403
    )


def test_reverse_view_and_its_export(engine_client, signed, park):
    signed(engine_client, "officer")
    scenario = park["三甲医院AI辅助影像诊断应用场景"]
    page = engine_client.get(f"/ui/resources/{scenario}")
    assert page.status_code == 200 and "适合的企业与需求" in page.text
    assert "智影医疗科技" in page.text or "寻找医院影像场景验证" in page.text
    assert "排名理由" in page.text
    r = engine_client.get(f"/ui/export/fit/{scenario}?format=xlsx")
    rows = list(load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True))
    assert len(rows) >= 2 and rows[1][2] in ("需求", "企业")


def test_overview_draws_the_funnel(engine_client, signed, park):
    csrf = signed(engine_client, "officer")
    html = search(engine_client, csrf, q="医院 人工智能 影像诊断").text
    import re

    rid = re.search(r'name="request_id" value="([0-9a-f]+)"', html).group(1)
    first = int(re.search(r'<h3 id="title-(\d+)"', html).group(1))
    engine_client.post(
        "/ui/feedback", data={"csrf": csrf, "request_id": rid, "resource_id": first, "action": "contacted"}
    )
    engine_client.post(
        "/ui/feedback",
        data={
            "csrf": csrf,
            "request_id": rid,
            "resource_id": first,
            "action": "rejected",
            "reason": "unclear",
        },
    )
    r = engine_client.get("/ui/overview")
    assert r.status_code == 200
    assert r.text.count("<svg") >= 3 and 'role="img"' in r.text
    assert "应用场景" in r.text and "联系 1" in r.text and "描述不清" in r.text
    assert "无人满足的需求" in r.text and "从未被匹配的资源" in r.text
    assert "已截止：地铁站客流智能监测场景" in r.text  # expired: never shown in any list
    stats = engine_client.get("/v1/stats", headers={})
    assert stats.status_code == 401  # the page is the person's view; the API still needs a key
