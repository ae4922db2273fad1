"""Explanations: which terms matched (with spans for highlighting), tags in common, constraints, score parts;
and the pipeline's explanation stage for resources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from embeddings.lexical.bm25 import LexicalIndex
from embeddings.text import find_spans
from matcher.domain.tables import Resource
from matcher.domain.taxonomy import Taxonomy
from matcher.matching.fit import Ask, constraints
from matcher.matching.retrieval import Candidate

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


def resource_explainer(
    *,
    db: Engine,
    taxonomy: Taxonomy,
    lexical: LexicalIndex,
    text: str,
    tokens: list[str],
    ask: Ask,
    tenant: str,
    highlights: bool = True,
    language: str | None = None,
) -> Callable[[list[Candidate]], dict[int, dict[str, Any]]]:
    """The explanation stage of a forward match. With `highlights`, titles and descriptions are read from the
    store to mark the matched terms (a candidate deleted meanwhile goes unexplained) and each explanation is in
    its resource's language; without, nothing per candidate is read from the store (digests). `language`
    overrides the resource's."""

    def stage(cands: list[Candidate]) -> dict[int, dict[str, Any]]:
        rows: dict[int, Resource] = {}
        if highlights:
            with Session(db) as session:
                ids = [c.id for c in cands]
                rows = {r.id: r for r in session.exec(select(Resource).where(col(Resource.id).in_(ids)))}
        out = {}
        for c in cands:
            r = rows.get(c.id)
            if highlights and r is None:
                continue
            # the query words the document holds, read off the lexical index (no re-tokenising)
            doc_tokens = set(lexical.matched_terms(tokens, c.id))
            own = "en" if r is not None and r.language == "en" else "zh"
            out[c.id] = explain(
                query_text=text if highlights else "",
                query_tokens=tokens,
                doc_tokens=doc_tokens,
                doc_fields={"title": r.title, "description": r.description} if r is not None else {},
                ask_tags=ask.own_industries,
                doc_tags=tuple(c.meta.industries),
                constraints=constraints(ask, c.meta, caller_tenant=tenant),
                components=c.components,
                taxonomy=taxonomy,
                language=language or own,
            )
        return out

    return stage
