"""JSON with a nesting limit: one value, or a document whose rows are parsed one by one, so a crafted row nested
thousands deep is refused on its own (never a RecursionError that loses the whole file)."""

from __future__ import annotations

import json
import re

# Resource rows nest a few levels (details -> stages -> ...); anything far deeper is crafted, and the parser,
# pydantic and the JSON columns of the store all recurse per level.
MAX_DEPTH = 32

JSONValue = dict[str, object] | list[object] | str | int | float | bool | None

_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# a string (escapes included) or one bracket: what skipping a value must see to find its end
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class TooDeep(ValueError):
    """A JSON value nested deeper than MAX_DEPTH levels."""

    def __init__(self) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")


def too_deep(value: object, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed value nests deeper than `limit` containers; iterative, so any depth is safe to ask."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads(text: str) -> JSONValue:
    """json.loads with the nesting limit; raises TooDeep, or json.JSONDecodeError for malformed text."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep() from None
    if too_deep(value):
        raise TooDeep()
    return value  # type: ignore[no-any-return]


def loads_rows(text: str) -> JSONValue:
    """A whole JSON document whose rows are bounded one at a time: the elements of a top-level array, or of an
    array held by a top-level object ({"data": [...]}), become a TooDeep in place of a value nested too deep.

    Raises json.JSONDecodeError for malformed text and TooDeep when the document itself is a deep scalar path."""
    idx = _skip_ws(text, 0)
    opener = text[idx : idx + 1]
    if opener == "[":
        value, idx = _container(text, idx, rows=False)
    elif opener == "{":
        value, idx = _container(text, idx, rows=True)
    else:
        return loads(text)
    idx = _skip_ws(text, idx)
    if idx != len(text):
        raise json.JSONDecodeError("Extra data", text, idx)
    return value


def _skip_ws(text: str, idx: int) -> int:
    match = _WHITESPACE.match(text, idx)
    return match.end() if match else idx


def _bounded(text: str, idx: int) -> tuple[object, int]:
    """The value starting at idx and the index after it; a TooDeep in its place when it nests too deep."""
    try:
        value, end = _DECODER.raw_decode(text, idx)
    except RecursionError:
        return TooDeep(), _skip_value(text, idx)
    return (TooDeep() if too_deep(value) else value), end


def _skip_value(text: str, idx: int) -> int:
    """The index after the container starting at idx, found by counting brackets outside strings."""
    depth = 0
    for token in _TOKEN.finditer(text, idx):
        symbol = token.group()
        if symbol in "[{":
            depth += 1
        elif symbol in "]}":
            depth -= 1
            if depth == 0:
                return token.end()
    raise json.JSONDecodeError("Unterminated array or object", text, idx)


def _container(text: str, idx: int, *, rows: bool) -> tuple[list[object] | dict[str, object], int]:
    """The array or object opening at idx, each member bounded; with `rows`, an object's array members are
    themselves read element by element (the {"data": [...]} wrapper)."""
    is_object = text[idx] == "{"
    closer = "}" if is_object else "]"
    items: list[object] = []
    members: dict[str, object] = {}
    idx = _skip_ws(text, idx + 1)
    if text.startswith(closer, idx):
        return (members if is_object else items), idx + 1
    while True:
        if is_object:
            if not text.startswith('"', idx):
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, idx)
            key, idx = _DECODER.raw_decode(text, idx)
            idx = _skip_ws(text, idx)
            if not text.startswith(":", idx):
                raise json.JSONDecodeError("Expecting ':' delimiter", text, idx)
            idx = _skip_ws(text, idx + 1)
            if rows and text.startswith("[", idx):
                members[key], idx = _container(text, idx, rows=False)
            else:
                members[key], idx = _bounded(text, idx)
        else:
            value, idx = _bounded(text, idx)
            items.append(value)
        idx = _skip_ws(text, idx)
        if text.startswith(closer, idx):
            return (members if is_object else items), idx + 1
        if not text.startswith(",", idx):
            raise json.JSONDecodeError("Expecting ',' delimiter", text, idx)
        idx = _skip_ws(text, idx + 1)
