"""Words every record of a park uses whatever it is about: 场景, 技术, 平台, 有限公司, "co", "technology" ...

They are never shown as the terms a match was made on (an explanation that names 场景 and 部署 explains
nothing). The reverse direction does not search on them either (`query_terms`): its query is a resource's whole
text and its index a few hundred needs and enterprises, in which 场景 is in a quarter of the titles, so its IDF
is high enough to outweigh what the records are about. A forward match leaves them out when its query is a need
or an enterprise (park records, phrased as this list was written from) and searches them in free text, where
leaving them out cost nDCG@10 on the need -> research result benchmark (`MatchQuery.drop_generic`;
docs/matching.md has the figures). The general stop words of `embeddings.text` (的, 了, the, of ...) are dropped
before this list is consulted.

The words are written here from what park records say about themselves (administrative, corporate, project and
research phrasing), not fitted to a benchmark."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from embeddings.text import BIGRAM_PREFIX, STOPWORDS, has_cjk, lexical_terms, normalize, stem

# runs of Chinese characters, as `lexical_terms` makes its bigrams of them
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_CJK_STOPWORDS = [w for w in STOPWORDS if len(w) == 1 and has_cjk(w)]

GENERIC_ZH = frozenset(
    # corporate and administrative
    "公司 有限公司 有限 责任 股份 集团 企业 单位 机构 部门 园区 园 科技 行业 产业 市场 客户 "
    # what every record offers
    "技术 平台 系统 应用 服务 方案 解决方案 产品 模式 能力 功能 创新 一体化 "
    # research phrasing
    "研究 方法 问题 研发 开发 成果 "
    # scenario and project phrasing
    "场景 应用场景 项目 试点 示范 部署 落地 建设 "
    # what a need asks
    "需求 需要 寻求 寻找 希望 合作 对接 开展 提供 支持 实现 推动 推进 提升 提高 引进 引入 获得 获取 面向 "
    "用于 包括 具备 要求 相关 领域 方面 发展 关键 核心 重点 多种 "
    # fillers jieba leaves as single characters, and amounts
    "可 能 用 将 向 至 个 家 项 年 月 万 亿 元 万元 亿元 新 高 大 多 等".split()
)
GENERIC_EN = frozenset(
    "co ltd inc llc corp corporation company companies limited group "
    "technology technologies tech system systems platform platforms solution solutions service services "
    "application applications app apps product products enterprise enterprises business "
    "research method methods approach problem problems "
    "project projects scenario scenarios pilot pilots deploy deployment deployed "
    "need needs seek seeks seeking looking want wants provide provides providing offer offers "
    "support supports based use uses used using develop develops developing development partner partners "
    "cooperation industry industries field related new innovative innovation leading".split()
)


@lru_cache(maxsize=1)
def _generic() -> frozenset[str]:
    # tokens of latin words are Snowball stems ("technolog"): the list holds both the words and their stems
    return GENERIC_ZH | GENERIC_EN | frozenset(stem(w) for w in GENERIC_EN)


def is_generic(term: str) -> bool:
    """Whether a token of `embeddings.text.tokenize` (or a character bigram of `lexical_terms`) is a generic
    park word."""
    return term.removeprefix(BIGRAM_PREFIX) in _generic()


def content_terms(terms: Iterable[str]) -> list[str]:
    """The terms that say what a text is about: generic words dropped, and single Chinese characters too when a
    longer term is there to show."""
    kept = [t for t in dict.fromkeys(terms) if not is_generic(t)]
    if any(len(t) > 1 or not has_cjk(t) for t in kept):
        kept = [t for t in kept if len(t) > 1 or not has_cjk(t)]
    return kept


def query_terms(text: str, tokens: list[str]) -> list[str]:
    """The terms a lexical search runs on: `lexical_terms` (words and Chinese character bigrams) without the
    generic words, nor the bigrams that lie wholly within them and the stop words between them (场景部署: neither
    #场景 nor #景部; 部署的场景: nor #署的). A text of nothing but generic words keeps them all (something must
    be searched)."""
    words = [t for t in tokens if not is_generic(t)]
    if not words:
        return lexical_terms(text, tokens)
    # what a bigram may lie within: the generic words of the text and the stop-word characters beside them
    generic = [t for t in dict.fromkeys(tokens) if has_cjk(t) and is_generic(t)] + _CJK_STOPWORDS
    bigrams: list[str] = []
    for run in _CJK_RUN.findall(normalize(text)):
        covered = [False] * len(run)
        for g in generic:
            i = run.find(g)
            while i >= 0:
                covered[i : i + len(g)] = [True] * len(g)
                i = run.find(g, i + 1)
        bigrams += [
            BIGRAM_PREFIX + run[i : i + 2] for i in range(len(run) - 1) if not (covered[i] and covered[i + 1])
        ]
    return words + bigrams
