"""The rules of a chain's links that a schema cannot state: keys unique, references to links of the chain, and
no cycle (a chain flows from upstream to downstream); and each link's depth in that flow."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matcher.domain.chain_schemas import LinkIn
from matcher.errors import invalid

STAGES = ("upstream", "midstream", "downstream")


@dataclass(frozen=True)
class CheckedLink:
    key: str
    link: LinkIn
    feeds: tuple[str, ...]  # both directions given, as "this link feeds those"
    depth: int


def _keys(links: Sequence[LinkIn]) -> list[str]:
    keys = [link.key or f"l{k + 1}" for k, link in enumerate(links)]
    seen: dict[str, int] = {}
    for k, key in enumerate(keys):
        if key in seen:
            raise invalid(
                f"links.{k}.key",
                f"key {key!r} is also link {seen[key]}'s; keys are unique in a chain",
                "duplicate",
            )
        seen[key] = k
    return keys


def _cycle(keys: list[str], feeds: dict[str, list[str]]) -> list[str] | None:
    """A cycle of the links as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(key: str) -> list[str] | None:
        state[key] = 1
        path.append(key)
        for nxt in feeds[key]:
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[key] = 2
        return None

    for key in keys:
        if key not in state and (found := visit(key)) is not None:
            return found
    return None


def check_links(links: Sequence[LinkIn]) -> list[CheckedLink]:
    """422 naming the link at fault for a repeated key, an unknown reference or a cycle; else each link's key,
    what it feeds and its depth (0: fed by no link)."""
    keys = _keys(links)
    known = set(keys)
    feeds: dict[str, list[str]] = {key: [] for key in keys}
    for k, (key, link) in enumerate(zip(keys, links, strict=True)):
        for name, refs in (("feeds", link.feeds), ("upstream", link.upstream)):
            for r, ref in enumerate(refs):
                if ref not in known:
                    raise invalid(
                        f"links.{k}.{name}.{r}", f"no link with key {ref!r} in this chain", "not_found"
                    )
                src, dst = (key, ref) if name == "feeds" else (ref, key)
                if dst not in feeds[src]:
                    feeds[src].append(dst)
    cycle = _cycle(keys, feeds)
    if cycle is not None:
        raise invalid(
            "links",
            "the links form a cycle: " + " -> ".join(cycle) + "; a chain flows from upstream to downstream "
            "/ 产业链环节之间不能成环",
            "cycle",
        )
    depth = dict.fromkeys(keys, 0)
    for key in _topological(keys, feeds):
        for nxt in feeds[key]:
            depth[nxt] = max(depth[nxt], depth[key] + 1)
    return [
        CheckedLink(key, link, tuple(feeds[key]), depth[key]) for key, link in zip(keys, links, strict=True)
    ]


def _topological(keys: list[str], feeds: dict[str, list[str]]) -> list[str]:
    indegree = dict.fromkeys(keys, 0)
    for key in keys:
        for nxt in feeds[key]:
            indegree[nxt] += 1
    ready = [k for k in keys if indegree[k] == 0]
    out = []
    while ready:
        key = ready.pop(0)
        out.append(key)
        for nxt in feeds[key]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    return out


def depths(keys: Sequence[str], feeds: dict[str, Sequence[str]]) -> dict[str, int]:
    """Depth of each stored link (its feeds are checked acyclic when stored)."""
    graph = {k: [f for f in feeds.get(k, ()) if f in feeds] for k in keys}
    depth = dict.fromkeys(keys, 0)
    for key in _topological(list(keys), graph):
        for nxt in graph[key]:
            depth[nxt] = max(depth[nxt], depth[key] + 1)
    return depth
