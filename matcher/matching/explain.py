"""Explanations: which terms matched (with spans for highlighting), tags in common, constraints, score parts."""

from __future__ import annotations

from typing import Any

from embeddings.text import find_spans
from matcher.domain.taxonomy import Taxonomy

MAX_SPAN_TEXT = 4000  # characters of a description scanned for highlights


def highlight(text: str, query_tokens: set[str], *, limit: int = 40) -> list[dict[str, Any]]:
    """Where the query's terms occur in ``text``: character offsets into the original text, for the UI."""
    return [
        {"start": start, "end": end, "text": text[start:end], "term": tok}
        for tok, start, end in find_spans(text[:MAX_SPAN_TEXT], query_tokens)[:limit]
    ]


def explain(
    *,
    query_text: str,
    query_tokens: list[str],
    doc_tokens: set[str],
    doc_fields: dict[str, str],
    ask_tags: tuple[str, ...],
    doc_tags: tuple[str, ...],
    constraints: list[dict[str, Any]],
    components: dict[str, Any],
    taxonomy: Taxonomy,
    language: str = "zh",
) -> dict[str, Any]:
    qset = set(query_tokens)
    matched = sorted(qset & doc_tokens, key=lambda t: (-len(t), t))
    common = [t for t in ask_tags if t in doc_tags]
    return {
        "matched_terms": matched[:30],
        "highlights": {name: highlight(text, qset) for name, text in doc_fields.items() if text},
        "query_highlights": highlight(query_text, set(doc_tokens) & qset) if query_text else [],
        "tags_in_common": [
            {"id": t, "zh": taxonomy.label(t, "zh"), "en": taxonomy.label(t, "en")} for t in common
        ],
        "constraints": constraints,
        "components": components,
        "summary": summary(matched, common, constraints, components, taxonomy, language),
    }


def summary(
    matched: list[str],
    common: list[str],
    constraints: list[dict[str, Any]],
    components: dict[str, Any],
    taxonomy: Taxonomy,
    language: str,
) -> str:
    """One line a person can read (used in the weekly email as well)."""
    zh = language.startswith("zh")
    parts: list[str] = []
    if common:
        labels = (
            "、".join(taxonomy.label(t, "zh") for t in common[:3])
            if zh
            else ", ".join(taxonomy.label(t, "en") for t in common[:3])
        )
        parts.append(f"同属{labels}" if zh else f"both in {labels}")
    if matched:
        terms = ("、" if zh else ", ").join(matched[:4])
        parts.append(f"关键词匹配：{terms}" if zh else f"shared terms: {terms}")
    met = [
        c["name"]
        for c in constraints
        if c["status"] == "met" and c["name"] in ("ticket", "stage", "trl", "region")
    ]
    if met:
        names_zh = {"ticket": "投资额度", "stage": "投资阶段", "trl": "技术成熟度", "region": "地区"}
        parts.append(("符合" + "、".join(names_zh[m] for m in met)) if zh else ("fits " + ", ".join(met)))
    score = components.get("score")
    if score is not None:
        parts.append(f"匹配度 {score:.0%}" if zh else f"match {score:.0%}")
    return ("；" if zh else "; ").join(parts)
