"""The other spellings the API and the importer take for some fields, and the JSON schemas that document them.

A list may come as one string of names (a spreadsheet cell: "AI、芯片" or one name a line), a stage or a transfer
mode as a synonym in either language ("天使轮", "Series A", "许可"). The document says so with the same rules the
validators follow, so a client (or a conformance run) reads from it what the server takes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

# what separates the names of a list given as one string (line breaks too: one name a line in a cell)
SEPARATORS = ",;、，；|/\r\n"
_SEPARATOR = re.compile(f"[{re.escape(SEPARATORS)}]")
# the characters str.strip() removes, as a JSON Schema (ECMA-262) character class
_SPACE = r"[\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_SPACE_IN_LINE = r"[\t\x0b\x0c\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_SEP_CLASS = r"[,;、，；|/\r\n]"
_NAME_CHAR = r"[^,;、，；|/\r\n\x00]"

# bilingual synonyms accepted on the way in
STAGE_SYNONYMS = {
    "seed": "seed",
    "种子": "seed",
    "种子期": "seed",
    "天使": "seed",
    "天使轮": "seed",
    "angel": "seed",
    "pre-seed": "seed",
    "startup": "startup",
    "初创": "startup",
    "初创期": "startup",
    "early": "startup",
    "a": "startup",
    "a轮": "startup",
    "pre-a": "startup",
    "series a": "startup",
    "成长前期": "startup",
    "growth": "growth",
    "成长": "growth",
    "成长期": "growth",
    "b": "growth",
    "b轮": "growth",
    "c": "growth",
    "c轮": "growth",
    "series b": "growth",
    "series c": "growth",
    "扩张期": "growth",
    "mature": "mature",
    "成熟": "mature",
    "成熟期": "mature",
    "pre-ipo": "mature",
    "ipo": "mature",
    "并购": "mature",
    "late": "mature",
}
TRANSFER_SYNONYMS = {
    "transfer": "transfer",
    "转让": "transfer",
    "assignment": "transfer",
    "license": "license",
    "licence": "license",
    "许可": "license",
    "授权": "license",
    "licensing": "license",
    "equity": "equity",
    "作价入股": "equity",
    "入股": "equity",
    "作价投资": "equity",
    "co-development": "co-development",
    "codevelopment": "co-development",
    "合作开发": "co-development",
    "联合开发": "co-development",
    "技术合作": "co-development",
}


def normalize_stage(value: Any) -> Any:
    if isinstance(value, str):
        return STAGE_SYNONYMS.get(value.strip().lower(), value.strip().lower())
    return value


def normalize_transfer_mode(value: Any) -> Any:
    return TRANSFER_SYNONYMS.get(str(value).strip().lower(), value)


def split_list(value: Any) -> Any:
    """A list as it is; a string as the names it separates (see SEPARATORS), each stripped, empty ones left out;
    null as no names."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in _SEPARATOR.split(value) if p.strip()]
    return value


# ---------------------------------------------------------------- the document


def literal(word: str) -> str:
    """A regular expression that matches the word as it is (escaping only what both Python and ECMA-262 read as
    syntax: an escaped hyphen or space is not valid everywhere)."""
    return "".join(f"\\{c}" if c in ".^$*+?()[]{}|\\" else c for c in word)


def any_case(word: str) -> str:
    """A regular expression that matches the word in any case (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.lower() != c.upper() else literal(c) for c in word)


def _one_of(values: Iterable[str], *, ignore_case: bool) -> str:
    spell = any_case if ignore_case else literal
    return "|".join(spell(value) for value in sorted(values, key=len, reverse=True))


def synonym_pattern(synonyms: Iterable[str]) -> str:
    """One value given as any of the names, in any case, with white space around it."""
    return f"^{_SPACE}*(?:{_one_of(synonyms, ignore_case=True)}){_SPACE}*$"


def names_pattern(most: int, max_length: int = 300) -> str:
    """A list as one string: at most `most` names of at most `max_length` characters (its items' own rules), no
    NUL (the store refuses it)."""
    name = f"{_NAME_CHAR}{{0,{max_length}}}"
    return f"^{name}(?:{_SEP_CLASS}{name}){{0,{most - 1}}}$"


def values_pattern(values: Iterable[str], *, ignore_case: bool) -> str:
    """A list as one string of the values (or their synonyms), each with white space around it, or none."""
    # each piece read one way only (no separator is white space here, a name starts with none), so that matching
    # a long string that fails does not backtrack without end
    one = f"{_SPACE_IN_LINE}*(?:(?:{_one_of(values, ignore_case=ignore_case)}){_SPACE_IN_LINE}*)?"
    return f"^{one}(?:{_SEP_CLASS}{one})*$"


@dataclass(frozen=True)
class OrOneString:
    """Documents a list field that also takes one string of names (`pattern`; None: any string) or null (no
    names)."""

    pattern: str | None

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        listed = handler(schema)
        one: JsonSchemaValue = {"type": "string"}
        if self.pattern is not None:
            one["pattern"] = self.pattern
        one["description"] = "names separated by , ; 、 ， ； | / or lines"
        return {"anyOf": [listed, one, {"type": "null"}]}


@dataclass(frozen=True)
class OrSynonym:
    """Documents an enumerated value that also takes a synonym, in any case (`pattern`)."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [handler(schema), {"type": "string", "pattern": self.pattern}]}
