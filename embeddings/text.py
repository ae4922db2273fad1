"""Text normalisation and Chinese/English tokenisation shared by the lexical index and the encoders."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

logger = logging.getLogger(__name__)

_WS = re.compile(r"\s+")
_CJK_CHAR = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
_LATIN = r"[a-z0-9]+(?:[-_.][a-z0-9]+)*"
_CJK = re.compile(_CJK_CHAR)
_CJK_RUN = re.compile(_CJK_CHAR + "+")
_LATIN_WORD = re.compile(_LATIN)
# a token is a run of CJK characters, or a latin/digit word (keeps 6G, MRP, CO2, covid-19)
_TOKEN = re.compile(f"{_CJK_CHAR}+|{_LATIN}")

_STOPWORDS_ZH = set(
    "的 了 和 与 及 或 在 是 对 为 以 于 中 等 将 并 被 其 该 这 那 之 而 由 从 把 也 就 都 又 个 上 下 "
    "我们 你们 他们 本文 文中 一种 一个 通过 进行 采用 利用 基于 提出 研究 分析 方法 结果 表明 可以 能够 "
    "具有 以及 同时 然后 如果 因此 所以 但是 对于 关于 针对 问题 使用 实现 得到 根据 作为 已经 没有 不同 "
    "目前 存在 主要 其中 这些 这种 相关 有效 显著 较 更 很 最 还 已 就是 因为".split()
)
_STOPWORDS_EN = set(
    "a an the and or of to in on for with by from at as is are was were be been being this that these those "
    "it its we our you your they their he she his her not no but if then than so such can could may might will "
    "would shall should do does did done has have had which who whom what when where why how all any each "
    "other some into over under about between through during after before also only very more most".split()
)
STOPWORDS = frozenset(_STOPWORDS_ZH | _STOPWORDS_EN)

_jieba_lock = threading.Lock()
_jieba = None


def _t2s():
    """Traditional -> Simplified converter, or None when the optional library is missing."""
    try:
        import opencc  # opencc-python-reimplemented

        return opencc.OpenCC("t2s")
    except Exception:  # pragma: no cover - optional dependency
        return None


_T2S = _t2s()


def _t2s_triggers(converter) -> frozenset[str]:
    """The characters without which the converter leaves a text as it is: for each dictionary entry that changes
    its key (the first candidate is the one used), the key's characters that change, or every character of a
    key whose length changes. A text that holds none of them converts to itself, so the pure-Python conversion
    (the larger part of indexing a Chinese document) is skipped for it: about 97 % of simplified abstracts."""
    if converter is None:
        return frozenset()
    converter.convert("")  # loads the dictionaries
    out: set[str] = set()
    for group in converter._dict_chain_data:
        for _max_len, _min_len, mapping in group:
            for key, value in mapping.items():
                first = value.split(" ")[0]
                if len(first) != len(key):
                    out.update(key)
                else:
                    out.update(a for a, b in zip(key, first, strict=True) if a != b)
    return frozenset(out)


_T2S_TRIGGERS = _t2s_triggers(_T2S)


def _stemmer():
    """Snowball English stemmer (PyStemmer, C speed), or None when the library is missing."""
    try:
        import Stemmer

        return Stemmer.Stemmer("english")
    except Exception:  # pragma: no cover - optional dependency
        return None


_STEM = _stemmer()


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Stem a lower-case latin word; words with digits (6g, co2) are kept as they are."""
    if _STEM is None or not word.isalpha():
        return word
    return _STEM.stemWord(word)


def normalize(text: str) -> str:
    """NFKC (full width -> half width), Traditional -> Simplified, lower case, collapsed white space."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text)
    if _T2S is not None and not _T2S_TRIGGERS.isdisjoint(text):
        text = _T2S.convert(text)
    return _WS.sub(" ", text).strip().lower()


def _get_jieba():
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


# large enough for the clauses of a few thousand abstracts: an import batch is segmented once, for the
# lexical index, and the encoder (also in its forked tokeniser workers) then finds every clause cached
@lru_cache(maxsize=65536)
def _segment_cjk(run: str) -> tuple[str, ...]:
    return tuple(w for w in _get_jieba().cut_for_search(run) if w.strip())


def tokenize(text: str, *, normalized: bool = False, keep_stopwords: bool = False) -> list[str]:
    """Tokens for BM25 and static embeddings: jieba search-mode words for Chinese, stemmed latin words.

    Single CJK characters are kept (they carry meaning in short queries) but stop words are dropped.
    """
    if not normalized:
        text = normalize(text)
    out: list[str] = []
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if _CJK.match(tok):
            words: Iterable[str] = _segment_cjk(tok)
        else:
            words = (tok,) if keep_stopwords or tok not in STOPWORDS else ()
            words = (stem(tok),) if words else ()
        for w in words:
            if keep_stopwords or w not in STOPWORDS:
                out.append(w)
    return out


@lru_cache(maxsize=16384)
def _normalize_char(c: str) -> str:
    return normalize(c) or " "


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text or ""))


# the prefix keeps character bigrams apart from jieba words of the same two characters
BIGRAM_PREFIX = "#"
LEXICAL_TERMS_ID = "embeddings.text.lexical_terms/v2"


def lexical_terms(text: str, tokens: list[str] | None = None) -> list[str]:
    """Terms for the BM25 index: the words of ``tokenize`` plus the overlapping character bigrams of every
    Chinese run (``#`` + two characters).

    Bigrams catch what word segmentation splits differently in a query and a document (水运工程 vs
    水运 / 工程项目) and rare compounds jieba does not know. Measured in docs/encoders.md: word BM25 0.745 ->
    0.756 nDCG@10 on csl-need2doc-dev, 0.584 -> 0.614 on the proxy set. ``tokens``, when the caller already
    has ``tokenize(text)``, saves tokenising twice."""
    norm = normalize(text)
    out = list(tokens) if tokens is not None else tokenize(norm, normalized=True)
    for m in _CJK_RUN.finditer(norm):
        run = m.group(0)
        out.extend(BIGRAM_PREFIX + run[i : i + 2] for i in range(len(run) - 1))
    return out


def find_spans(text: str, terms: Iterable[str]) -> list[tuple[str, int, int]]:
    """(term, start, end) of each occurrence of ``terms`` (tokens of ``tokenize``) in the *original* text,
    left to right, without overlaps (the longer term wins at the same start).

    Chinese terms are found as substrings of the normalised text (so 电池 is found inside 电池组, whatever
    jieba would make of the sentence); latin terms match whole words by their stem. It costs a few string
    scans per term instead of segmenting the text, which keeps explanations cheap at serving time."""
    terms = set(terms)
    if not text or not terms:
        return []
    flat = "".join(c[0] for c in (_normalize_char(ch) for ch in text))
    found: list[tuple[int, int, str]] = []
    for t in terms:
        if _CJK.match(t):
            i = flat.find(t)
            while i >= 0:
                found.append((i, i + len(t), t))
                i = flat.find(t, i + 1)
    if any(not _CJK.match(t) for t in terms):
        for m in _LATIN_WORD.finditer(flat):
            w = m.group(0)
            if w not in STOPWORDS and stem(w) in terms:
                found.append((m.start(), m.end(), stem(w)))
    found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
    out: list[tuple[str, int, int]] = []
    end = -1
    for start, stop, t in found:
        if start >= end:
            out.append((t, start, stop))
            end = stop
    return out
