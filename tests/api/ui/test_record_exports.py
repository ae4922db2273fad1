"""Exports of the record lists (enterprises, resources by kind, scenarios closing soon) to XLSX and CSV: the rows
the list shows, another tenant's private records never, formula-like cells neutralised."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from openpyxl import load_workbook

from api.ui import record_exports


def _sheet(r) -> list[tuple]:
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r.headers["content-disposition"]
    book = load_workbook(io.BytesIO(r.content))
    assert all(c.data_type != "f" for row in book.active.iter_rows() for c in row)  # never a formula
    return list(book.active.iter_rows(values_only=True))


def _csv(r) -> list[list[str]]:
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))


def _post(client, headers, who, path, body):
    r = client.post(path, json=body, headers=headers[who])
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_enterprise_list_exports_what_the_list_shows(client, signed, headers, payloads, monkeypatch):
    monkeypatch.setattr(record_exports, "PAGE", 1)  # every page of the list, not the first one
    ents = "/v1/enterprises"
    _post(client, headers, "admin", ents, payloads.enterprise(name='=HYPERLINK("http://evil","点我")'))
    _post(client, headers, "admin", ents, payloads.enterprise(name="-2+3 智能制造", description="@SUM(A1)"))
    _post(client, headers, "other", ents, payloads.enterprise(name="乙园公开企业", email="b@park-b.example"))
    _post(client, headers, "other", ents, payloads.enterprise(name="乙园私有企业", visibility="private"))
    signed(client, "officer")
    listed = client.get("/ui/enterprises")
    assert "/ui/export/enterprises?format=xlsx" in listed.text and "乙园私有企业" not in listed.text
    rows = _sheet(client.get("/ui/export/enterprises?format=xlsx"))
    assert rows[0][:3] == ("编号", "名称", "行业")
    names = [row[1] for row in rows[1:]]
    assert sorted(names) == sorted(['\'=HYPERLINK("http://evil","点我")', "'-2+3 智能制造", "乙园公开企业"])
    assert "'@SUM(A1)" in [row[5] for row in rows[1:]]
    flat = repr(rows)
    assert "乙园私有企业" not in flat and "b@park-b.example" not in flat and "contact@example.com" not in flat
    assert all(str(row[-1]).startswith("http://testserver/ui/enterprises/") for row in rows[1:])
    lines = _csv(client.get("/ui/export/enterprises", params={"format": "csv", "q": "乙园"}))
    assert [line[1] for line in lines[1:]] == ["乙园公开企业"]  # the list's filter
    client.cookies.set("pm_lang", "en")
    assert _csv(client.get("/ui/export/enterprises?format=csv"))[0][:2] == ["id", "name"]


def test_resource_list_exports_by_kind_with_the_same_visibility(client, signed, headers, payloads):
    res = "/v1/resources"
    _post(client, headers, "admin", res, payloads.resource("result", title="+86 量子芯片成果"))
    _post(client, headers, "admin", res, payloads.resource("fund", title="甲园基金"))
    _post(client, headers, "other", res, payloads.resource("result", title="乙园公开成果"))
    _post(
        client, headers, "other", res, payloads.resource("result", title="乙园私有成果", visibility="private")
    )
    signed(client, "officer")
    assert "/ui/export/resources?format=csv" in client.get("/ui/resources?kind=result").text
    rows = _sheet(client.get("/ui/export/resources?format=xlsx&kind=result"))
    assert rows[0][:3] == ("编号", "标题", "类型")
    assert sorted(row[1] for row in rows[1:]) == sorted(["'+86 量子芯片成果", "乙园公开成果"])
    assert {row[2] for row in rows[1:]} == {"科技成果"}
    assert "乙园私有成果" not in repr(rows)
    everything = _csv(client.get("/ui/export/resources?format=csv"))
    assert sorted(line[1] for line in everything[1:]) == sorted(
        ["'+86 量子芯片成果", "甲园基金", "乙园公开成果"]
    )
    client.cookies.clear()
    signed(client, "other")  # the other park sees its own private record and not ours unless public
    theirs = _csv(client.get("/ui/export/resources?format=csv&kind=result"))
    assert "乙园私有成果" in [line[1] for line in theirs[1:]]
    assert client.get("/ui/export/resources?format=pdf").status_code == 422


def test_closing_soon_exports_and_needs_a_sign_in(client, signed, headers, payloads):
    soon = (date.today() + timedelta(days=5)).isoformat()
    for who, title, vis in (
        ("admin", "=1+1 五天后截止的场景", "public"),
        ("other", "乙园私有场景", "private"),
        ("other", "乙园公开场景", "public"),
    ):
        body = payloads.resource("scenario", title=title, visibility=vis)
        body["details"]["deadline"] = soon
        _post(client, headers, who, "/v1/resources", body)
    assert "application/vnd" not in client.get("/ui/export/closing").headers["content-type"]
    signed(client, "officer")
    rows = _sheet(client.get("/ui/export/closing?format=xlsx"))
    assert sorted(row[1] for row in rows[1:]) == sorted(["'=1+1 五天后截止的场景", "乙园公开场景"])
    assert all(row[4] == soon and row[5] == 5 for row in rows[1:])
    assert len(_csv(client.get("/ui/export/closing?format=csv"))) == 3
