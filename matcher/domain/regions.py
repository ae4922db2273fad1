"""Regions in Chinese and English: provinces, major cities, Beijing's districts and the Zhongguancun parks, each
with its aliases ("Beijing" = "北京" = "北京市", "Haidian" = "海淀" = "海淀区") and the regions it lies in
(海淀园 lies in 海淀区 and in 中关村; every region lies in 全国).

Filters and fit compare regions through this table: a record's region *fits* a query's region when both name
the same place or one lies inside the other ("北京" fits a record in 海淀园; a nationwide fund fits a need in
海淀). A name the table does not know keeps its old normalised form (lower case, without 区/市), so two
spellings of an unknown place still match each other."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from embeddings.text import normalize

# suffixes tried when a name is not in the table as written ("Haidian District" -> "haidian")
_SUFFIXES = (
    "特别行政区",
    "自治区",
    "新区",
    "省",
    "市",
    "区",
    "县",
    "district",
    "city",
    "province",
    "municipality",
)
_SEPARATORS = re.compile(r"[\s\-_·.,，、'’]+")


@dataclass(frozen=True)
class Region:
    id: str
    zh: str
    en: str
    parents: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


@dataclass
class Regions:
    regions: dict[str, Region]
    _lookup: dict[str, str] = field(default_factory=dict, repr=False)
    _within: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _keys: dict[str, str | None] = field(default_factory=dict, repr=False)  # name -> key, memoised

    def __post_init__(self) -> None:
        for r in self.regions.values():
            for name in (r.id, r.zh, r.en, *r.aliases):
                self._lookup.setdefault(_key(name), r.id)
        for rid in self.regions:
            self._within[rid] = frozenset(self._ancestors(rid))

    @classmethod
    def from_file(cls) -> Regions:
        raw = resources.files("matcher.domain").joinpath("data/regions.json").read_text(encoding="utf-8")
        return cls(
            {
                r["id"]: Region(
                    r["id"], r["zh"], r["en"], tuple(r.get("parents", ())), tuple(r.get("aliases", ()))
                )
                for r in json.loads(raw)["regions"]
            }
        )

    def _ancestors(self, rid: str) -> set[str]:
        seen: set[str] = set()
        todo = list(self.regions[rid].parents)
        while todo:
            p = todo.pop()
            if p in seen or p not in self.regions:
                continue
            seen.add(p)
            todo.extend(self.regions[p].parents)
        return seen

    def canonical(self, name: str | None) -> str | None:
        """The region id of a name or alias in either language, or None when the table does not know it."""
        if not name:
            return None
        key = _key(name)
        if key in self._lookup:
            return self._lookup[key]
        for suffix in _SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix) and key[: -len(suffix)] in self._lookup:
                return self._lookup[key[: -len(suffix)]]
        return None

    def key(self, name: str | None) -> str | None:
        """What filters compare: the region id when known, else the name lower-cased without 区/市."""
        if not name or not name.strip():
            return None
        if name in self._keys:
            return self._keys[name]
        rid = self.canonical(name)
        key = rid if rid is not None else (normalize(name).removesuffix("区").removesuffix("市") or None)
        if len(self._keys) >= 50_000:
            self._keys.clear()
        self._keys[name] = key
        return key

    def within(self, key: str, container: str) -> bool:
        """Whether the place `key` names lies in (or is) the place `container` names (both from `key`)."""
        return key == container or container in self._within.get(key, ())

    def fits(self, a: str | None, b: str | None) -> bool | None:
        """Whether two regions are compatible (the same, or one inside the other); None when either is missing."""
        ka, kb = self.key(a), self.key(b)
        if ka is None or kb is None:
            return None
        return self.within(ka, kb) or self.within(kb, ka)

    def passes(self, record_key: str, wanted: Iterable[str]) -> bool:
        """The hard filter: the record lies inside one of the wanted regions, or covers the whole country."""
        return record_key == "china" or any(self.within(record_key, w) for w in wanted)

    def names_passing(self, name: str) -> list[str]:
        """Every spelling of a region that passes the filter `name` (`passes`): the region's own, those of the
        places inside it and those of the whole country; for filters on stored text."""
        target = self.key(name)
        if target is None:
            return []
        out = {name.strip()}
        for r in self.regions.values():
            if self.passes(r.id, [target]):
                out.update((r.zh, r.en, *r.aliases))
        return sorted(out)

    def label(self, name: str | None, language: str = "zh") -> str | None:
        """The region's name in a language ("海淀" -> "Haidian District"); unknown names as given."""
        rid = self.canonical(name)
        if rid is None:
            return name
        r = self.regions[rid]
        return r.zh if language.startswith("zh") else r.en


def _key(name: str) -> str:
    return _SEPARATORS.sub("", normalize(name))


@lru_cache(maxsize=1)
def default_regions() -> Regions:
    return Regions.from_file()


def region_key(name: str | None) -> str | None:
    return default_regions().key(name)
