"""Industry chains in the workbench: the create form (a cycle refused in both languages, nothing typed lost), a
chain's page with its map, records per link and gaps with candidates, officers' decisions kept across a new
placement, the investment-attraction list as CSV (formulas neutralised), the map as PNG (here and in the API),
CSRF, another tenant's chain, and a role the matrix does not let write."""

from __future__ import annotations

import csv
import io
import re
import struct

import pytest
from sqlmodel import Session, select

from matcher.chains.render import layout
from matcher.domain.park_tables import IndustryChain
from matcher.domain.permissions import MATRIX, Grant

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

FORM = {
    "name_zh": "智能网联汽车",
    "name_en": "Intelligent connected vehicles",
    "gap_threshold": "1",
    "min_score": "0.2",
    "max_links_per_record": "2",
    "rows": "4",
    "links.0.key": "chip",
    "links.0.name_zh": "车规芯片",
    "links.0.name_en": "Automotive chips",
    "links.0.stage": "upstream",
    "links.0.feeds": "compute",
    "links.0.description": "车规级芯片、集成电路与功率器件设计",
    "links.1.key": "hdmap",
    "links.1.name_zh": "=高精地图",
    "links.1.name_en": "HD maps",
    "links.1.stage": "upstream",
    "links.1.feeds": "compute",
    "links.1.description": "自动驾驶高精地图测绘与定位服务",
    "links.1.keywords": "高精地图, 测绘",
    "links.2.key": "compute",
    "links.2.name_zh": "计算平台",
    "links.2.name_en": "Computing platform",
    "links.2.stage": "midstream",
    "links.2.description": "自动驾驶域控制器与车载计算平台",
}


def _create(client, csrf: str, **over: str) -> int:
    r = client.post("/ui/chains/new", data={"csrf": csrf, **FORM, **over}, follow_redirects=False)
    assert r.status_code == 303, r.text[:2000]
    return int(re.search(r"/ui/chains/(\d+)", r.headers["location"]).group(1))


def _chains(engine) -> list[IndustryChain]:
    with Session(engine) as s:
        return list(s.exec(select(IndustryChain)))


def test_the_form_refuses_a_cycle_in_both_languages_and_keeps_what_was_typed(client, signed, engine):
    csrf = signed(client, "officer")
    assert "产业链图谱" in client.get("/ui/chains").text
    more = client.post("/ui/chains/new", data={"csrf": csrf, **FORM, "more": "1"})
    assert more.status_code == 200 and 'name="links.4.key"' in more.text and 'value="计算平台"' in more.text
    cycle = {**FORM, "links.2.feeds": "chip"}  # chip -> compute -> chip
    bad = client.post("/ui/chains/new", data={"csrf": csrf, **cycle})
    assert bad.status_code == 422 and "输入有误" in bad.text
    assert "cycle" in bad.text and "产业链环节之间不能成环" in bad.text and 'id="c-links-err"' in bad.text
    assert 'value="车规级芯片、集成电路与功率器件设计"' in bad.text and 'value="chip"' in bad.text
    client.cookies.set("pm_lang", "en")
    bad_en = client.post("/ui/chains/new", data={"csrf": csrf, **cycle})
    assert bad_en.status_code == 422 and "Please check your input" in bad_en.text and "cycle" in bad_en.text
    unknown = client.post("/ui/chains/new", data={"csrf": csrf, **FORM, "links.2.feeds": "nowhere"})
    assert unknown.status_code == 422 and 'id="l-2-feeds-err"' in unknown.text  # the row at fault
    assert _chains(engine) == []  # nothing half-written


def test_a_chain_page_places_records_lists_gaps_and_keeps_officers_decisions(engine_client, signed, headers):
    client, h = engine_client, headers["admin"]
    ents = {}
    for key, name, text in (
        ("chip", "芯驰车规芯片", "车规级芯片与集成电路设计，功率器件"),
        ("compute", "域控计算", "自动驾驶域控制器与车载计算平台"),
    ):
        r = client.post("/v1/enterprises", json={"name": name, "description": text}, headers=h)
        ents[key] = r.json()["id"]
    outside = client.post(
        "/v1/enterprises",
        json={"name": "远图高精地图", "description": "高精地图采集测绘与众包更新服务"},
        headers=headers["other"],
    ).json()
    csrf = signed(client, "officer")
    cid = _create(client, csrf)
    page = client.get(f"/ui/chains/{cid}?saved=1")
    assert page.status_code == 200 and "<svg" in page.text and 'data-key="hdmap"' in page.text
    r = client.post(f"/ui/chains/{cid}/placement", data={"csrf": csrf})
    assert r.status_code == 200 and "已完成落位" in r.text
    api = client.get(f"/v1/chains/{cid}", headers=h).json()
    compute = next(x for x in api["links"] if x["key"] == "compute")
    assert [e["name"] for e in compute["enterprises"]][:1] == ["域控计算"]
    section = r.text.split('id="link-compute"', 1)[1].split("</section>", 1)[0]
    assert "域控计算" in section
    gap = r.text.split('id="gaps"', 1)[1].split('id="links"', 1)[0]
    assert "#1" in gap and "该环节尚无园区企业" in gap and outside["name"] in gap  # the candidate, explained
    # an officer pins the chip maker on the map link: kept across a new placement, then removed and lifted
    pin = {"csrf": csrf, "link_key": "hdmap", "record_type": "enterprise", "decision": "pinned"}
    ok = client.post(f"/ui/chains/{cid}/placements", data={**pin, "record_id": str(ents["chip"])})
    assert ok.status_code == 200 and "已保存" in ok.text
    again = client.post(f"/ui/chains/{cid}/placement", data={"csrf": csrf})
    hd = again.text.split('id="link-hdmap"', 1)[1].split("</section>", 1)[0]
    assert "芯驰车规芯片" in hd and "固定在此环节" in hd
    placement_id = re.search(rf"/ui/chains/{cid}/placements/(\d+)/lift", hd).group(1)
    bad = client.post(f"/ui/chains/{cid}/placements", data={**pin, "record_id": str(outside["id"])})
    assert bad.status_code == 422 and "belongs to another tenant" in bad.text  # the API's message, kept form
    assert f'value="{outside["id"]}"' in bad.text
    removed = client.post(
        f"/ui/chains/{cid}/placements", data={**pin, "decision": "excluded", "record_id": str(ents["chip"])}
    )
    hd = removed.text.split('id="link-hdmap"', 1)[1].split("</section>", 1)[0]
    assert "芯驰车规芯片" not in hd
    lifted = client.post(f"/ui/chains/{cid}/placements/{placement_id}/lift", data={"csrf": csrf})
    assert lifted.status_code == 200
    assert client.get(f"/v1/chains/{cid}/placements?source=officer", headers=h).json()["count"] == 0
    # the investment-attraction list: one row per gap and candidate, formulas neutralised
    export = client.get(f"/ui/export/chains/{cid}/gaps?format=csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["缺口排名", "环节编号", "环节"]
    hd_rows = [row for row in rows[1:] if row[1] == "hdmap"]
    assert hd_rows and all(row[2] == "'=高精地图" for row in hd_rows)
    assert outside["name"] in {row[9] for row in hd_rows}
    xlsx = client.get(f"/ui/export/chains/{cid}/gaps?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_the_map_as_png_here_and_in_the_api_and_never_another_tenants(client, signed, headers, engine):
    csrf = signed(client, "officer")
    cid = _create(client, csrf)
    chain = client.get(f"/v1/chains/{cid}", headers=headers["admin"])
    assert chain.status_code == 200
    r = client.get(f"/ui/chains/{cid}/map.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    from matcher.domain.chain_schemas import ChainPublic

    lay = layout(ChainPublic.model_validate(chain.json()))
    assert _png_size(r.content) == (lay.width, lay.height) and len(r.content) > 5_000
    api = client.get(f"/v1/chains/{cid}/map.png", headers=headers["admin"])
    assert api.status_code == 200 and _png_size(api.content) == (lay.width, lay.height)
    assert client.get(f"/ui/chains/{cid}/map.svg").text.startswith("<svg")
    other = client.get(f"/v1/chains/{cid}/map.png", headers=headers["other"])
    assert other.status_code == 404 and other.headers["content-type"] == "application/problem+json"
    assert "智能网联汽车" not in other.text


def test_another_tenants_chain_csrf_and_a_role_that_may_not_write(client, signed, engine, monkeypatch):
    csrf = signed(client, "officer")
    cid = _create(client, csrf)
    no_token = client.post("/ui/chains/new", data={**FORM, "name_zh": "无令牌"})
    assert no_token.status_code == 403 and "表单已失效" in no_token.text
    assert [c.name_zh for c in _chains(engine)] == ["智能网联汽车"]
    other_csrf = signed(client, "other")
    for url in (f"/ui/chains/{cid}", f"/ui/chains/{cid}/map.png", f"/ui/export/chains/{cid}/gaps?format=csv"):
        r = client.get(url)
        assert r.status_code == 404 and "智能网联汽车" not in r.text and "高精地图" not in r.text, url
        assert "未找到该记录" in r.text
    pin = {
        "csrf": other_csrf,
        "link_key": "chip",
        "record_type": "enterprise",
        "record_id": "1",
        "decision": "pinned",
    }
    r = client.post(f"/ui/chains/{cid}/placements", data=pin)
    assert r.status_code == 404 and "智能网联汽车" not in r.text
    assert "智能网联汽车" not in client.get("/ui/chains").text
    # a role whose row of the matrix reads chains only: no controls, and a write is refused
    monkeypatch.setitem(MATRIX["chain"], "create", Grant("tenant", "none", "none"))
    monkeypatch.setitem(MATRIX["chain"], "update", Grant("tenant", "none", "none"))
    csrf = signed(client, "officer")
    page = client.get(f"/ui/chains/{cid}")
    assert (
        page.status_code == 200
        and "运行落位" not in page.text
        and f'action="/ui/chains/{cid}/placements"' not in page.text
    )
    assert "新建产业链" not in client.get("/ui/chains").text
    refused = client.post(f"/ui/chains/{cid}/placement", data={"csrf": csrf})
    assert refused.status_code == 403 and "无权" in refused.text
    refused = client.post("/ui/chains/new", data={"csrf": csrf, **FORM, "name_zh": "不该保存"})
    assert refused.status_code == 403 and len(_chains(engine)) == 1


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_list_and_the_new_form_render_in_each_language(client, signed, lang):
    signed(client, "officer")
    client.cookies.set("pm_lang", lang)
    words = {
        "zh": ("产业链图谱", "新建产业链", "再加一行"),
        "en": ("Industry-chain maps", "New industry chain", "Add a row"),
    }
    listed = client.get("/ui/chains")
    assert listed.status_code == 200 and words[lang][0] in listed.text and words[lang][1] in listed.text
    form = client.get("/ui/chains/new")
    assert form.status_code == 200 and words[lang][2] in form.text and 'name="csrf"' in form.text
