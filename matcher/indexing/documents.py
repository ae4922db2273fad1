"""What text of a record gets indexed and encoded, for both sides of the market."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matcher.domain.tables import Enterprise, Need, Resource
from matcher.domain.taxonomy import Taxonomy
from matcher.indexing.demand_keys import DEMAND_ENTERPRISE, DEMAND_NEED, demand_key
from matcher.indexing.metas import stamp

# detail fields whose text says what a resource offers (provider names help "who" queries)
_DETAIL_TEXT = {
    "result": ("holder", "ip_status"),
    "scenario": ("owner", "location", "eligibility", "validation_window"),
    "fund": ("manager",),
    "incubator": ("operator", "location", "admission"),
}
_DETAIL_LISTS = {
    "result": ("transfer_modes",),
    "scenario": (),
    "fund": ("sectors",),
    "incubator": ("facilities", "tracks"),
}


def tag_labels(tags: list[str], taxonomy: Taxonomy) -> str:
    """Both languages' labels of the tags: the bilingual bridge between Chinese and English texts."""
    parts: list[str] = []
    for t in tags:
        tag = taxonomy.tags.get(t)
        if tag is None:
            parts.append(t)
        else:
            parts.extend((tag.zh, tag.en))
    return " ".join(parts)


def resource_text(
    *,
    kind: str,
    title: str,
    description: str,
    industries: list[str],
    details: dict[str, Any],
    taxonomy: Taxonomy,
) -> str:
    extra: list[str] = []
    for field in _DETAIL_TEXT.get(kind, ()):
        v = details.get(field)
        if v:
            extra.append(str(v))
    for field in _DETAIL_LISTS.get(kind, ()):
        v = details.get(field) or []
        if field == "sectors":
            extra.append(tag_labels(list(v), taxonomy))
        else:
            extra.extend(str(x) for x in v)
    return "\n".join(p for p in (title, description, " ".join(extra), tag_labels(industries, taxonomy)) if p)


def resource_document(r: Resource, taxonomy: Taxonomy) -> str:
    """The indexed text of a stored resource (also the query text of its reverse match)."""
    return resource_text(
        kind=r.kind,
        title=r.title,
        description=r.description,
        industries=list(r.industries or []),
        details=r.details or {},
        taxonomy=taxonomy,
    )


def need_text(*, title: str, description: str, industries: list[str], taxonomy: Taxonomy) -> str:
    return "\n".join(p for p in (title, description, tag_labels(industries, taxonomy)) if p)


def enterprise_text(*, name: str, description: str, industries: list[str], taxonomy: Taxonomy) -> str:
    return "\n".join(p for p in (name, description, tag_labels(industries, taxonomy)) if p)


def demand_rows(
    taxonomy: Taxonomy, needs: Sequence[Need], enterprises: Sequence[Enterprise]
) -> tuple[list[int], list[str], list[float]]:
    """The demand side's index keys, texts and stamps of these needs and enterprises."""
    keys: list[int] = []
    texts: list[str] = []
    stamps: list[float] = []
    for n in needs:
        keys.append(demand_key(DEMAND_NEED, n.id))
        texts.append(
            need_text(
                title=n.title,
                description=n.description,
                industries=list(n.industries or []),
                taxonomy=taxonomy,
            )
        )
        stamps.append(stamp(n))
    for e in enterprises:
        keys.append(demand_key(DEMAND_ENTERPRISE, e.id))
        texts.append(
            enterprise_text(
                name=e.name,
                description=e.description,
                industries=list(e.industries or []),
                taxonomy=taxonomy,
            )
        )
        stamps.append(stamp(e))
    return keys, texts, stamps
