"""Decompression bombs: an XLSX whose members would inflate past the limit derived from MATCHER_MAX_IMPORT_BYTES,
or that is compressed like a bomb, is refused with 413 before it is parsed; a real workbook still imports."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from openpyxl import Workbook

from matcher.errors import PayloadTooLarge
from matcher.ingest import zip_guard
from tests.matcher.ingest.test_import import XLSX, run, stored

SMALL = 100_000  # the import limit of these tests: workbooks may inflate to 400 kB


def workbook(rows: int, cols: int = 3, value: str | None = None) -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["编号", "标题", "简介", *[f"备注{i}" for i in range(cols - 3)]])
    for i in range(rows):
        ws.append([f"X{i}", value or f"成果{i}", value or "钙钛矿叠层电池", *[value] * (cols - 3)])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    """The workbook with one more member, deflated (a bomb when `content` is zeros)."""
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buf.getvalue()


def test_a_real_workbook_still_imports_under_a_small_limit(session, settings):
    data = workbook(200)
    assert len(data) < SMALL
    small = settings.model_copy(update={"max_import_bytes": SMALL})
    report = run(session, data, settings=small, filename="rows.xlsx", kind="result")
    assert report.totals.created == 200 and report.totals.rejected == 0
    assert len(stored(session)) == 200


def test_a_repeated_cell_block_inflating_past_the_limit_is_413_before_parsing(session, settings, monkeypatch):
    data = workbook(1_000, cols=20, value="同一个单元格的内容")
    inflated = sum(m.file_size for m in zipfile.ZipFile(io.BytesIO(data)).infolist())
    assert len(data) < SMALL < zip_guard.inflated_limit(SMALL) < inflated
    parsed: list[object] = []
    monkeypatch.setattr("openpyxl.load_workbook", lambda *a, **k: parsed.append(a))
    small = settings.model_copy(update={"max_import_bytes": SMALL})
    with pytest.raises(PayloadTooLarge, match="inflates to more than 400,000 bytes"):
        run(session, data, settings=small, filename="rows.xlsx", kind="result")
    assert parsed == [] and stored(session) == []


def test_a_member_of_zeros_is_refused_by_its_ratio_in_milliseconds(session, settings):
    data = with_member(workbook(3), "xl/media/zeros.bin", bytes(20_000_000))
    assert len(data) < 100_000 and 20_000_000 < zip_guard.inflated_limit(settings.max_import_bytes)
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge, match=r"'xl/media/zeros.bin' is compressed [\d,]+:1"):
        run(session, data, settings=settings, filename="rows.xlsx", kind="result")
    assert time.perf_counter() - started < 1.0
    assert stored(session) == []


def test_small_members_may_compress_beyond_the_ratio(session, settings):
    data = with_member(workbook(3), "xl/media/pad.bin", bytes(zip_guard.RATIO_FLOOR))
    report = run(session, data, settings=settings, filename="rows.xlsx", kind="result")
    assert report.totals.created == 3


def test_http_xlsx_bomb_is_413(settings, engine, keys):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import bearer

    small = settings.model_copy(update={"max_import_bytes": SMALL})
    bomb = with_member(workbook(3), "xl/worksheets/sheet2.xml", bytes(5_000_000))
    with TestClient(create_app(small, load_engine=False)) as c:
        h = {**bearer(keys.admin), "Content-Type": XLSX}
        resp = c.post("/v1/resources:import?kind=result", content=bomb, headers=h)
        assert resp.status_code == 413 and resp.headers["content-type"] == "application/problem+json"
        assert "inflates to more than" in resp.json()["detail"]
        resp = c.post("/v1/resources:import?kind=result", content=workbook(5), headers=h)
        assert resp.status_code == 200 and resp.json()["totals"]["created"] == 5
