"""The workbench in a real browser (headless Chromium): sign in, search in Chinese and English, filter, open a
result, mark one not relevant with a reason, pin another, export XLSX and read it back, open a digest link
signed out; bad input; and no request ever leaves 127.0.0.1."""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Page, expect
from sqlmodel import Session, select

from matcher.digests.runner import resource_page_url
from matcher.domain.tables import Curation, Enterprise, Feedback, Resource
from matcher.store.db import make_engine
from tests.e2e.conftest import PASSWORD, Live, screenshots_dir

pytestmark = pytest.mark.slow


def shot(page: Page, name: str) -> None:
    target = screenshots_dir()
    if target is not None:
        page.screenshot(path=str(target / f"{name}.png"), full_page=False, caret="initial")


def sign_in(page: Page, live: Live, email: str | None = None) -> None:
    page.goto(f"{live.base}/ui")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    page.get_by_label("邮箱").fill(email or live.officer)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="搜索与匹配")).to_be_visible()


def search(page: Page, text: str) -> None:
    box = page.get_by_role("searchbox", name=re.compile("搜索|Search"))
    box.fill(text)
    with page.expect_response(lambda r: r.url.endswith("/ui/search") and r.request.method == "POST"):
        box.press("Enter")
    # htmx marks the form while its request is in flight and until the answer is swapped in
    page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-settling, .htmx-swapping')")


def results(page: Page):
    return page.get_by_role("list", name=re.compile("^(匹配结果|Matches)$")).get_by_role("listitem")


def db(live: Live):
    return make_engine(live.settings)


def test_sign_in_search_curate_export(context, live: Live, tmp_path):
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live.base}/ui/login")
    shot(page, "sign-in")
    page.get_by_label("邮箱").fill(live.officer)
    page.get_by_label("密码").fill("wrong password")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("alert")).to_contain_text("邮箱或密码不正确")
    sign_in(page, live)

    # Chinese free text
    search(page, "医院 人工智能 影像 诊断")
    cards = results(page)
    expect(cards.first).to_be_visible()
    assert cards.count() >= 3
    first = cards.first
    expect(first.get_by_role("button", name="相关 / Relevant", exact=True)).to_be_visible()
    expect(first.get_by_role("button", name="不相关 / Not relevant", exact=True)).to_be_visible()
    expect(first.locator("mark").first).to_be_visible()
    expect(first).to_contain_text("排名理由")
    shot(page, "search")

    # filters: funds only
    page.get_by_role("checkbox", name="基金").check()
    search(page, "人工智能 投资 早期")
    kinds = results(page).locator(".badge.kind-fund")
    assert results(page).count() >= 1 and kinds.count() == results(page).count()
    page.get_by_role("checkbox", name="基金").uncheck()

    # mark one not relevant, with a reason
    search(page, "医院 人工智能 影像 诊断")
    card = results(page).nth(1)
    title = card.get_by_role("heading").inner_text()
    card.get_by_label("不相关原因").select_option(label="地区不符")
    card.get_by_role("button", name="不相关 / Not relevant", exact=True).click()
    expect(card.get_by_role("status")).to_contain_text("已记录：不相关（地区不符）")
    engine = db(live)
    with Session(engine) as s:
        fb = s.exec(select(Feedback).where(Feedback.action == "rejected")).one()
        assert fb.reason == "region_mismatch" and s.get(Resource, fb.resource_id).title == title

    # open a result (recorded as clicked), then come back
    link = results(page).first.get_by_role("heading").get_by_role("link")
    opened = link.inner_text()
    link.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(opened)
    expect(page.get_by_role("heading", name="适合的企业与需求")).to_be_visible()
    shot(page, "resource")
    with Session(engine) as s:
        assert s.exec(select(Feedback).where(Feedback.action == "clicked")).first() is not None
    page.go_back()

    # pin a resource for an enterprise picked by name
    with Session(engine) as s:
        ent = s.exec(select(Enterprise).where(Enterprise.name == "智瞳医疗科技有限公司")).one()
    page.goto(f"{live.base}/ui/search")
    page.get_by_label("为企业或需求匹配（按名称选择）").fill("智瞳医疗科技有限公司")
    search(page, "")
    expect(page.get_by_role("heading", name=re.compile("为企业匹配：智瞳医疗科技有限公司"))).to_be_visible()
    third = results(page).nth(2)
    pinned_title = third.get_by_role("heading").inner_text()
    third.get_by_role("button", name="置顶", exact=True).click()
    expect(third.get_by_role("button", name="取消置顶")).to_be_visible()
    search(page, "")
    expect(results(page).first.get_by_role("heading")).to_have_text(pinned_title)
    expect(results(page).first).to_contain_text("已置顶")
    with Session(engine) as s:
        assert s.exec(select(Curation).where(Curation.enterprise_id == ent.id)).one().state == "pin"

    # export the list to XLSX and read it back
    shown = [h.inner_text() for h in results(page).get_by_role("heading").all()]
    with page.expect_download() as dl:
        page.get_by_role("button", name="导出 XLSX").click()
    path = tmp_path / "export.xlsx"
    dl.value.save_as(path)
    rows = list(load_workbook(io.BytesIO(path.read_bytes())).active.iter_rows(values_only=True))
    assert rows[0][3] == "标题" and [r[3] for r in rows[1:]] == shown

    # English
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Search and match")).to_be_visible()
    page.get_by_label("Match for an enterprise or a need (pick by name)").fill("")
    search(page, "solid-state battery electric vehicle")
    expect(results(page).first).to_contain_text("Why this rank")
    shot(page, "search-en")
    page.get_by_role("link", name="中文").click()

    page.goto(f"{live.base}/ui/overview")
    expect(page.locator("svg[role=img]").first).to_be_visible()
    shot(page, "overview")
    assert not [e for e in errors if "Content Security Policy" in e or "Refused" in e], errors
    assert live.outside == []
    engine.dispose()


def test_bad_input_in_the_browser(context, live: Live):
    page = context.new_page()
    sign_in(page, live)
    search(page, "量" * 20_000)
    expect(page.get_by_role("alert")).to_contain_text("搜索内容过长：20,000 个字符，上限为 2,000")
    assert len(page.get_by_role("searchbox").input_value()) == 20_000  # nothing lost
    engine = db(live)
    with Session(engine) as s:
        evil = Resource(
            tenant_id="demo-park",
            kind="result",
            title="<script>window.__pwned=1</script>量子陀螺仪",
            description="量子陀螺仪 导航",
        )
        s.add(evil)
        s.commit()
        evil_id = evil.id
    page.goto(f"{live.base}/ui/resources/{evil_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("<script>window.__pwned=1</script>量子陀螺仪")
    assert page.evaluate("window.__pwned") is None
    other = Enterprise(tenant_id="other-park", name="别的园区的私有企业", visibility="private")
    with Session(engine) as s:
        from matcher.store.keys import ensure_tenant

        ensure_tenant(s, "other-park")
        s.add(other)
        s.commit()
        other_id = other.id
    page.goto(f"{live.base}/ui/enterprises/{other_id}")
    expect(page.get_by_role("alert")).to_contain_text("未找到")
    expect(page.locator("body")).not_to_contain_text("别的园区")
    # the session ends while a search is typed: the answer says so and nothing typed is lost
    page.goto(f"{live.base}/ui/search")
    box = page.get_by_role("searchbox", name=re.compile("搜索|Search"))
    box.fill("量子 导航 陀螺仪")
    context.clear_cookies()
    box.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("这次提交没有保存")
    assert box.input_value() == "量子 导航 陀螺仪"
    page.goto(f"{live.base}/ui/enterprises")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    assert live.outside == []
    engine.dispose()


def test_a_digest_link_signed_out(browser, live: Live):
    from tests.e2e.conftest import _guard

    ctx = browser.new_context(locale="zh-CN")  # no session: the enterprise's own browser
    _guard(live, ctx)
    page = ctx.new_page()
    engine = db(live)
    with Session(engine) as s:
        ent = s.exec(select(Enterprise).where(Enterprise.name == "智瞳医疗科技有限公司")).one()
        res = s.exec(select(Resource).where(Resource.kind == "scenario")).first()
        ent_id, res_id, res_title = ent.id, res.id, res.title
    url = resource_page_url(live.settings, ent_id, res_id)
    page.goto(url)
    expect(page.get_by_role("heading", level=1)).to_have_text(res_title)
    shot(page, "digest-link")
    page.get_by_role("button", name="感兴趣").click()
    expect(page.get_by_role("status")).to_contain_text("谢谢")
    with Session(engine) as s:
        fb = s.exec(
            select(Feedback).where(Feedback.enterprise_id == ent_id, Feedback.resource_id == res_id)
        ).one()
        assert fb.action == "accepted"
    page.goto(url[:-4] + "AAAA")
    expect(page.get_by_role("heading", level=1)).to_have_text("链接无效")
    page.goto(f"{live.base}/docs")
    expect(page.locator(".swagger-ui").first).to_be_visible()
    page.goto(f"{live.base}/redoc")
    expect(page.get_by_text("parkmatch").first).to_be_visible()
    assert live.outside == []
    ctx.close()
    engine.dispose()
