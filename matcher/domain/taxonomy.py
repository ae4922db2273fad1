"""The bilingual industry taxonomy: canonical tags, aliases in Chinese and English, and tag normalisation."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

from embeddings.text import normalize


@dataclass(frozen=True)
class Tag:
    id: str
    zh: str
    en: str
    parent: str | None = None
    aliases: tuple[str, ...] = ()


@dataclass
class Taxonomy:
    tags: dict[str, Tag]
    _lookup: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for tag in self.tags.values():
            for name in (tag.id, tag.zh, tag.en, *tag.aliases):
                self._lookup.setdefault(_key(name), tag.id)

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> Taxonomy:
        if path is None:
            raw = resources.files("matcher.domain").joinpath("data/taxonomy.json").read_text(encoding="utf-8")
        else:
            raw = Path(path).read_text(encoding="utf-8")
        data = json.loads(raw)
        tags = {
            t["id"]: Tag(t["id"], t["zh"], t["en"], t.get("parent"), tuple(t.get("aliases", ())))
            for t in data["tags"]
        }
        return cls(tags)

    def canonical(self, name: str) -> str | None:
        """The canonical tag id for a name or alias in either language, or None when unknown."""
        return self._lookup.get(_key(name))

    def normalize_tags(self, names: Iterable[str]) -> tuple[list[str], list[str]]:
        """(tags, unknown): canonical ids where known, the cleaned name otherwise; order kept, duplicates dropped.

        Unknown tags are kept (the operator may extend the taxonomy) and reported separately."""
        out: list[str] = []
        unknown: list[str] = []
        for name in names:
            if not isinstance(name, str):
                continue
            clean = " ".join(name.split()).strip()
            if not clean:
                continue
            tag = self.canonical(clean)
            value = tag if tag is not None else normalize(clean)
            if tag is None and value not in unknown:
                unknown.append(value)
            if value not in out:
                out.append(value)
        return out, unknown

    def unknown(self, tags: Iterable[str]) -> list[str]:
        return [t for t in tags if t not in self.tags]

    def ancestors(self, tag_id: str) -> list[str]:
        chain: list[str] = []
        cur = self.tags.get(tag_id)
        while cur is not None and cur.parent and cur.parent not in chain:
            chain.append(cur.parent)
            cur = self.tags.get(cur.parent)
        return chain

    def expand(self, tag_ids: Iterable[str]) -> set[str]:
        """The tags with their ancestors: a 'robotics' need also fits an 'intelligent-equipment' fund."""
        out: set[str] = set()
        for t in tag_ids:
            out.add(t)
            out.update(self.ancestors(t))
        return out

    def label(self, tag_id: str, language: str = "zh") -> str:
        tag = self.tags.get(tag_id)
        if tag is None:
            return tag_id
        return tag.zh if language.startswith("zh") else tag.en

    def tags_in_text(self, text: str) -> list[str]:
        """Canonical tags whose name or alias appears in a text (bilingual bridge for cross-lingual queries)."""
        norm = normalize(text)
        found: list[str] = []
        for key, tag_id in self._text_keys:
            if tag_id in found:
                continue
            if key.isascii():
                # whole-word match for latin aliases (avoid 'ai' inside 'said')
                if re.search(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])", norm):
                    found.append(tag_id)
            elif key in norm:
                found.append(tag_id)
        return found

    @cached_property
    def _text_keys(self) -> list[tuple[str, str]]:
        keys = {}
        for tag in self.tags.values():
            for name in (tag.zh, tag.en, *tag.aliases):
                key = normalize(name)
                if len(key) >= 2:
                    keys.setdefault(key, tag.id)
        return sorted(keys.items(), key=lambda kv: -len(kv[0]))

    def as_dict(self) -> list[dict]:
        return [
            {"id": t.id, "zh": t.zh, "en": t.en, "parent": t.parent, "aliases": list(t.aliases)}
            for t in self.tags.values()
        ]


def _key(name: str) -> str:
    return normalize(name).replace(" ", "").replace("-", "").replace("_", "")


@lru_cache(maxsize=1)
def default_taxonomy() -> Taxonomy:
    return Taxonomy.from_file()
