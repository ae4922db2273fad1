"""The park office in a real browser (headless Chromium): a docking event created through its form, participants
added on both sides, the meetings planned and seen as the slots x tables grid; an industry chain drawn through
its form and placed, its map on the page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Live
from tests.e2e.test_workbench import shot, sign_in

pytestmark = pytest.mark.slow


def test_an_event_with_participants_is_planned_and_shown_as_a_grid(context, live: Live):
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    sign_in(page, live)
    page.get_by_role("link", name="对接活动").click()
    page.get_by_role("link", name="新建对接活动").click()
    page.locator("#ev-title").fill("数字医疗供需对接会")
    page.locator("#ev-date").fill("2031-05-20")
    page.locator("#ev-slots").fill("09:00-09:20\n09:20-09:40")
    page.locator("#ev-tables").fill("2")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("heading", name="数字医疗供需对接会")).to_be_visible()
    for label in ("智瞳医疗科技有限公司", re.compile(r"^三甲医院AI辅助影像诊断应用场景 · ")):
        record = page.get_by_label("企业或资源")
        option = record.locator("option").filter(has_text=label).first
        record.select_option(value=option.get_attribute("value"))
        page.get_by_role("button", name="添加参与方").click()
        expect(page.get_by_role("status")).to_contain_text("已保存")
    page.get_by_role("button", name="生成洽谈安排").click()
    expect(page.get_by_role("status")).to_contain_text("已生成洽谈安排")
    grid = page.get_by_role("table", name="洽谈安排：时段 × 桌")
    expect(grid).to_be_visible()
    cells = grid.locator("td.meeting")
    expect(cells.first).to_contain_text("智瞳医疗科技有限公司")
    expect(cells.first).to_contain_text("三甲医院AI辅助影像诊断应用场景")
    expect(page.get_by_text("已证明最优")).to_be_visible()
    shot(page, "event")
    assert errors == [] and live.outside == []


def test_a_chain_drawn_through_its_form_is_placed_and_mapped(context, live: Live):
    page = context.new_page()
    sign_in(page, live)
    page.get_by_role("link", name="产业链").click()
    page.get_by_role("link", name="新建产业链").click()
    page.locator("#c-name_zh").fill("数字医疗")
    page.locator("#c-name_en").fill("Digital health")
    rows = [
        ("ai", "医学影像AI", "Imaging AI", "upstream", "device", "医学影像人工智能辅助诊断算法"),
        ("device", "医疗器械", "Medical devices", "midstream", "hospital", "医疗器械研发与注册"),
        ("hospital", "医院应用", "Hospitals", "downstream", "", "医院临床应用与验证场景"),
    ]
    for i, (key, zh, en, stage, feeds, text) in enumerate(rows):
        page.locator(f"#l-{i}-key").fill(key)
        page.locator(f"#l-{i}-name_zh").fill(zh)
        page.locator(f"#l-{i}-name_en").fill(en)
        page.locator(f"#l-{i}-stage").select_option(stage)
        page.locator(f"#l-{i}-feeds").fill(feeds)
        page.locator(f"#l-{i}-description").fill(text)
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("数字医疗")
    page.get_by_role("button", name="运行落位").click()
    expect(page.get_by_role("status")).to_contain_text("已完成落位")
    expect(page.locator(".chain-map svg")).to_be_visible()
    expect(page.locator('.chain-map g[data-key="ai"]')).to_be_visible()
    shot(page, "chain")
    assert live.outside == []
