"""Explanations name what a match is about: never generic park words or Snowball stems, and the fields both
sides are in when few words are shared."""

from __future__ import annotations

from embeddings.text import lexical_terms, tokenize
from matcher.domain.generic_terms import content_terms, is_generic, query_terms
from matcher.domain.taxonomy import default_taxonomy
from matcher.matching.explain import explain

TAX = default_taxonomy()
FILLER = {"可", "场景", "技术", "平台", "系统", "应用", "服务", "部署", "有限公司", "公司", "企业", "项目"}
FILLER_EN = {"co", "ltd", "technolog", "technology", "system", "platform", "solution", "solut"}


def _explain(query: str, title: str, description: str = "", ask_tags=(), doc_tags=(), language="zh"):
    q = tokenize(query)
    doc = set(tokenize(f"{title}\n{description}"))
    return explain(
        query_text=query,
        query_tokens=q,
        doc_tokens={t: 1.0 for t in q if t in doc},
        doc_fields={"title": title, "description": description},
        ask_tags=tuple(ask_tags),
        doc_tags=tuple(TAX.expand(doc_tags)),
        constraints=[],
        components={"score": 0.5},
        taxonomy=TAX,
        language=language,
    )


def test_generic_words_and_stems_are_recognised():
    assert all(is_generic(t) for t in ("场景", "部署", "可", "有限公司", "co", "ltd", "technolog", "#场景"))
    assert not any(is_generic(t) for t in ("医院", "跌倒", "hospit", "robot", "#跌倒"))
    assert content_terms(["场景", "医院", "可", "co"]) == ["医院"]
    # a single character stays only when nothing longer is there to show
    assert content_terms(["氢", "可"]) == ["氢"] and content_terms(["氢", "燃料"]) == ["燃料"]


def test_the_lexical_query_leaves_generic_words_out_unless_nothing_else_is_left():
    text = "社区养老院跌倒检测场景，可部署"
    terms = query_terms(text, tokenize(text))
    assert "跌倒" in terms and "#跌倒" in terms
    assert not {"场景", "#场景", "部署", "#部署", "可"} & set(terms)
    only_generic = "技术平台"
    assert query_terms(only_generic, tokenize(only_generic)) == lexical_terms(only_generic)


def test_chinese_filler_is_never_a_matched_term():
    ex = _explain(
        "可部署的医院场景技术平台，有限公司",
        "三甲医院AI辅助影像诊断应用场景",
        "寻求可部署于院内私有云的辅助诊断系统与技术平台，某某有限公司承建。",
    )
    assert ex["matched_terms"] == ["医院"]
    assert not FILLER & {h["term"] for spans in ex["highlights"].values() for h in spans}
    assert "场景" not in ex["summary"] and "医院" in ex["summary"]


def test_english_terms_are_shown_as_written_never_as_stems():
    ex = _explain(
        "hospital logistics robots, Co. Ltd technology solutions",
        "Hospital logistics pilot for autonomous robots",
        "Robots deliver between hospital wards; a technology platform by Example Co.",
        language="en",
    )
    assert set(ex["matched_terms"]) == {"hospital", "logistics", "robots"}
    assert not FILLER_EN & set(ex["matched_terms"])
    spans = ex["highlights"]["title"]
    assert [h["text"] for h in spans] == ["Hospital", "logistics", "robots"]
    assert all(h["term"] == h["text"].lower() for h in spans)
    assert "shared terms: hospital" in ex["summary"] or "shared terms: logistics" in ex["summary"]


def test_a_word_and_its_jieba_parts_are_listed_once():
    ex = _explain("医疗器械注册", "医疗器械创新加速器")
    assert ex["matched_terms"] == ["医疗器械"]


def test_with_few_shared_words_the_fields_both_are_in_are_named():
    # no word in common: the summary says what the two share in the taxonomy instead
    ex = _explain(
        "毫米波雷达跌倒监测", "护理呼叫系统", ask_tags=("robotics",), doc_tags=("uav",), language="zh"
    )
    assert ex["matched_terms"] == []
    assert [(c["id"], c["via"]) for c in ex["concepts"]] == [("intelligent-equipment", "sector")]
    assert "相关领域：智能装备" in ex["summary"]
    ex = _explain(
        "AI for triage", "Emergency department pilot", doc_tags=("artificial-intelligence",), language="en"
    )
    assert [(c["id"], c["via"]) for c in ex["concepts"]] == [("artificial-intelligence", "text")]
    assert "related fields: Artificial intelligence" in ex["summary"]


def test_words_that_only_restate_a_shared_tag_are_not_listed_again():
    ex = _explain(
        "物联网 Internet of Things 跌倒检测",
        "城市物联网平台",
        "Internet of Things 设备接入与跌倒检测",
        ask_tags=("internet-of-things",),
        doc_tags=("internet-of-things",),
    )
    assert "物联网" not in ex["matched_terms"] and "internet" not in ex["matched_terms"]
    assert "跌倒" in ex["matched_terms"] and ex["summary"].startswith("同属物联网")
