"""Search and match in the workbench: free text in Chinese and English, a subject picked by name, filters,
cards with score, kind, provider, highlights, constraints and why; bad input as messages on the page."""

from __future__ import annotations

import re
from datetime import date

from matcher.demo.dataset import own_records, with_dates
from tests.api.ui.conftest import search, titles


def test_chinese_search_shows_cards_with_explanations(engine_client, signed, park):
    csrf = signed(engine_client, "officer")
    r = search(engine_client, csrf, q="医院 人工智能 影像诊断")
    assert r.status_code == 200
    html = r.text
    assert titles(html)[0] == "三甲医院AI辅助影像诊断应用场景"
    assert 'role="list"' in html and 'role="listitem"' in html
    assert "应用场景" in html and "京华医院" in html  # kind and provider
    assert "<mark>" in html  # the matched terms are highlighted
    assert 'class="met"' in html and "排名理由" in html and "匹配度" in html
    assert "相关 / Relevant" in html and "不相关 / Not relevant" in html
    assert "已截止：地铁站" not in html  # the expired scenario is filtered


def test_english_search_and_language(engine_client, signed, park):
    csrf = signed(engine_client, "officer")
    engine_client.cookies.set("pm_lang", "en")
    r = search(engine_client, csrf, q="quantum magnetometer brain imaging")
    assert r.status_code == 200
    assert "Why this rank" in r.text and "Matches" in r.text


def test_english_search_highlights_its_chinese_dictionary_words(engine_client, signed, headers):
    """An English query reaches Chinese records through the dictionary's words; the card shows those words
    matched and marks them in the Chinese title and the reason for the rank names them."""
    for record in own_records("scenarios"):
        body = {k: v for k, v in with_dates(record, date.today()).items() if k != "external_id"}
        assert engine_client.post("/v1/resources", json=body, headers=headers["admin"]).status_code == 201
    csrf = signed(engine_client, "officer")
    html = search(engine_client, csrf, q="hospital logistics robots").text
    assert titles(html)[0] == "医院后勤物流机器人配送场景"
    first = re.search(r'<li role="listitem".*?</li>', html, re.S).group(0)
    title = re.search(r'<h3 id="title-\d+"><a [^>]*>(.*?)</a></h3>', first).group(1)
    assert "<mark>医院</mark>" in title and "<mark>物流</mark>" in title
    terms = re.findall(r"<mark>(.*?)</mark>", re.search(r'<p class="facts terms">(.*?)</p>', first).group(1))
    assert {"医院", "物流"} <= set(terms)
    assert "关键词匹配：" in first and "医院" in re.search(r'<p class="why">(.*?)</p>', first).group(1)


def test_filters_narrow_the_list(engine_client, signed, park):
    csrf = signed(engine_client, "officer")
    every = titles(search(engine_client, csrf, q="人工智能 集成电路 投资").text)
    funds = titles(search(engine_client, csrf, q="人工智能 集成电路 投资", kinds="fund").text)
    assert funds and set(funds) < set(every)
    seed = titles(search(engine_client, csrf, q="人工智能 集成电路 投资", kinds="fund", stage="seed").text)
    assert seed == ["硬科技早期基金"]
    trl = titles(search(engine_client, csrf, q="量子 磁力计 锂电池 正极", kinds="result", trl_min="5").text)
    assert trl == ["锂电池正极材料低成本制备技术"]
    expired = titles(search(engine_client, csrf, q="地铁站 客流 监测", open_only="").text)
    assert "已截止：地铁站客流智能监测场景" in expired


def test_a_subject_picked_by_name(engine_client, signed, park):
    csrf = signed(engine_client, "officer")
    page = engine_client.get("/ui/search").text
    assert f"E{park['enterprise']} · 智影医疗科技" in page  # offered in the list
    r = search(engine_client, csrf, subject="智影医疗")
    assert r.status_code == 200 and "为企业匹配：智影医疗科技" in r.text
    r = search(engine_client, csrf, subject=f"N{park['need']} · 寻找医院影像场景验证")
    assert "为需求匹配：寻找医院影像场景验证" in r.text
    assert titles(r.text)[0] == "三甲医院AI辅助影像诊断应用场景"
    assert "置顶" in r.text  # curation controls for the need's enterprise
    unknown = search(engine_client, csrf, subject="不存在的企业")
    assert unknown.status_code == 422 and "找不到" in unknown.text


def test_bad_input_is_a_message_on_the_page(engine_client, signed, park, settings):
    csrf = signed(engine_client, "officer")
    long = "量子" * 10_000  # 20,000 characters
    r = search(engine_client, csrf, q=long)
    assert r.status_code == 422 and "搜索内容过长：20,000 个字符，上限为 2,000" in r.text
    assert long in r.text  # nothing lost: the text stays in the box
    r = search(engine_client, csrf, q="基金", amount="很多")
    assert r.status_code == 422 and "金额" in r.text
    r = search(engine_client, csrf, q="   ")
    assert r.status_code == 422 and "请输入搜索内容" in r.text


def test_search_by_link_and_htmx_fragment(engine_client, signed, park):
    signed(engine_client, "officer")
    r = engine_client.get("/ui/search", params={"q": "锂电池 正极材料"})
    assert titles(r.text)[0] == "锂电池正极材料低成本制备技术"
