"""Query strings as the OpenAPI document declares them: an unknown parameter, or a single-valued one given more
than once, is a 422 naming it, instead of being silently ignored (a typo in a filter would widen a list)."""

from __future__ import annotations

import types
import typing
import weakref
from typing import Any

from fastapi import Request

from matcher.errors import invalid

_SEQUENCES = (list, tuple, set, frozenset)
# id(route) -> (a weak reference to that route, (all, repeatable)): an id is reused once a discarded app's route
# is collected, so an entry counts only while its reference still names the route asked about
Declared = tuple[frozenset[str], frozenset[str]]
_declared: dict[int, tuple[weakref.ref[Any], Declared]] = {}


def _repeatable(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_repeatable(a) for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Annotated:
        return _repeatable(typing.get_args(annotation)[0])
    return typing.get_origin(annotation) in _SEQUENCES or annotation in _SEQUENCES


def _query_fields(dependant: Any) -> list[Any]:
    """The query parameters of a route's dependant and of every dependency below it."""
    out = list(dependant.query_params)
    for sub in dependant.dependencies:
        out += _query_fields(sub)
    return out


def _params_of(route: Any) -> Declared:
    entry = _declared.get(id(route))
    if entry is not None and entry[0]() is route:
        return entry[1]
    params = _query_fields(route.dependant)
    names = frozenset(p.alias for p in params)
    many = frozenset(p.alias for p in params if _repeatable(p.field_info.annotation))
    _declared[id(route)] = (weakref.ref(route), (names, many))
    return names, many


def declared_query_only(request: Request) -> None:
    """A router dependency: refuse query parameters the route does not declare, and repeats of single ones."""
    route = request.scope.get("route")
    if route is None or not hasattr(route, "dependant") or not request.query_params:
        return
    names, many = _params_of(route)
    seen: set[str] = set()
    for name, _ in request.query_params.multi_items():
        if name not in names:
            raise invalid(name, "unknown query parameter", "extra_forbidden")
        if name in seen and name not in many:
            raise invalid(name, "given more than once; this parameter takes one value", "too_many")
        seen.add(name)
