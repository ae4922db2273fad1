"""Explanations: which terms matched (with spans for highlighting), tags in common, constraints, score parts;
and the pipeline's explanation stage for resources."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from embeddings.lexical.bm25 import LexicalIndex
from embeddings.text import find_spans, has_cjk, tokenize
from matcher.domain.generic_terms import content_terms
from matcher.domain.tables import Resource
from matcher.domain.taxonomy import Taxonomy
from matcher.matching.fit import Ask, constraints
from matcher.matching.retrieval import Candidate, crosslingual

MAX_SPAN_TEXT = 4000  # characters of a description scanned for highlights


def highlight(text: str, terms: set[str], *, limit: int = 40) -> list[dict[str, Any]]:
    """Where the terms (tokens of `tokenize`) occur in ``text``: character offsets into the original text, for
    the UI; `term` is the word as written there (lower case), never a stem."""
    return [
        {"start": start, "end": end, "text": text[start:end], "term": text[start:end].lower()}
        for _tok, start, end in find_spans(text[:MAX_SPAN_TEXT], terms)[:limit]
    ]


def surfaces(terms: Iterable[str], texts: Iterable[str]) -> dict[str, str]:
    """token -> the word as it is written in the first text holding it ("hospit" -> "hospital"). A Chinese
    token is its own surface; a latin stem found in none of the texts has none (it is not shown)."""
    wanted = set(terms)
    out = {t: t for t in wanted if has_cjk(t)}
    for text in texts:
        if len(out) == len(wanted):
            break
        if not text:
            continue
        for tok, start, end in find_spans(text[:MAX_SPAN_TEXT], wanted - set(out)):
            out.setdefault(tok, text[start:end].lower())
    return out


def with_crosslingual(text: str, tokens: list[str]) -> list[str]:
    """The query's tokens and those of the Chinese words the dictionary gives for an English text (the words
    retrieval searched with): so that a Chinese record found through them shows them matched and highlighted."""
    extra = crosslingual(text) if text else ""
    if not extra:
        return tokens
    return list(dict.fromkeys([*tokens, *tokenize(extra)]))


def shared_concepts(
    taxonomy: Taxonomy, ask_tags: tuple[str, ...], doc_tags: Iterable[str], text_tags: Iterable[str] = ()
) -> list[dict[str, str]]:
    """What the two sides have in common beyond their words: taxonomy tags both carry (`tags`), a sector both
    fall in (`sector`: a robotics need and an intelligent-equipment fund), tags the query text names that the
    record carries (`text`: "AI" in the text, 人工智能 on the record)."""
    doc = set(doc_tags)
    found: dict[str, str] = {t: "tags" for t in ask_tags if t in doc}
    for t in ask_tags:
        if t not in doc:
            for parent in taxonomy.ancestors(t):
                if parent in doc:
                    found.setdefault(parent, "sector")
    for t in text_tags:
        if t in doc and not any(t in taxonomy.ancestors(x) for x in found):
            found.setdefault(t, "text")
    return [
        {"id": t, "zh": taxonomy.label(t, "zh"), "en": taxonomy.label(t, "en"), "via": via}
        for t, via in found.items()
    ]


def explain(
    *,
    query_text: str,
    query_tokens: list[str],
    doc_tokens: set[str] | dict[str, float],
    doc_fields: dict[str, str],
    ask_tags: tuple[str, ...],
    doc_tags: tuple[str, ...],
    constraints: list[dict[str, Any]],
    components: dict[str, Any],
    taxonomy: Taxonomy,
    language: str = "zh",
    query_highlights: bool = True,
    text_tags: Iterable[str] | None = None,
) -> dict[str, Any]:
    """One candidate's explanation. `doc_tokens`: the query tokens the record holds, or each with its share of
    the lexical score (then the terms are listed most telling first). Generic park words (场景, 技术,
    有限公司, "co" ...) are neither listed nor highlighted; latin terms are listed as written, not stemmed."""
    weights = doc_tokens if isinstance(doc_tokens, dict) else dict.fromkeys(doc_tokens, 0.0)
    if text_tags is None:
        text_tags = taxonomy.tags_in_text(query_text) if query_text else ()
    concepts = shared_concepts(taxonomy, ask_tags, doc_tags, text_tags)
    # the words of a shared tag's labels (indexed with both records) are said by the concept already
    restated = set().union(*(_label_tokens(c["zh"], c["en"]) for c in concepts))
    content = [t for t in content_terms(t for t in query_tokens if t in weights) if t not in restated]
    shown = surfaces(content, [*doc_fields.values(), query_text])
    ordered = sorted(
        (t for t in content if t in shown), key=lambda t: (-weights[t], -len(shown[t]), shown[t])
    )
    terms = set(ordered)
    # 医疗器械 says what 医疗 and 器械 (its jieba sub-words) would
    matched = [
        w
        for w in dict.fromkeys(shown[t] for t in ordered)
        if not (has_cjk(w) and any(w != o and w in o for o in (shown[t] for t in ordered)))
    ]
    common = [t for t in ask_tags if t in doc_tags]
    return {
        "matched_terms": matched[:30],
        "highlights": {name: highlight(text, terms) for name, text in doc_fields.items() if text},
        "query_highlights": highlight(query_text, terms) if query_text and query_highlights else [],
        "tags_in_common": [
            {"id": t, "zh": taxonomy.label(t, "zh"), "en": taxonomy.label(t, "en")} for t in common
        ],
        "concepts": concepts,
        "constraints": constraints,
        "components": components,
        "summary": summary(matched, concepts, constraints, components, language),
    }


@lru_cache(maxsize=4096)
def _label_tokens(zh: str, en: str) -> frozenset[str]:
    return frozenset(tokenize(f"{zh} {en}"))


FEW_TERMS = 2  # with fewer matched terms than this, the summary names the related fields as well


def summary(
    matched: list[str],
    concepts: list[dict[str, str]],
    constraints: list[dict[str, Any]],
    components: dict[str, Any],
    language: str,
) -> str:
    """One line a person can read (used in the weekly email and the reverse match as well)."""
    zh = language.startswith("zh")
    sep = "、" if zh else ", "
    parts: list[str] = []
    tagged = [c[("zh" if zh else "en")] for c in concepts if c["via"] == "tags"]
    related = [c[("zh" if zh else "en")] for c in concepts if c["via"] != "tags"]
    if tagged:
        parts.append(("同属" if zh else "both in ") + sep.join(tagged[:3]))
    if related and (len(matched) < FEW_TERMS or not tagged):
        parts.append(("相关领域：" if zh else "related fields: ") + sep.join(related[:3]))
    if matched:
        parts.append(("关键词匹配：" if zh else "shared terms: ") + sep.join(matched[:4]))
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

    text_tags = taxonomy.tags_in_text(text)
    tokens = with_crosslingual(text, tokens)
    content = content_terms(tokens)

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
            own = "en" if r is not None and r.language == "en" else "zh"
            out[c.id] = explain(
                query_text=text,
                query_tokens=tokens,
                # the query words the document holds with their share of its score, read off the lexical
                # index (no re-tokenising)
                doc_tokens=lexical.explain(content, c.id),
                doc_fields={"title": r.title, "description": r.description} if r is not None else {},
                ask_tags=ask.own_industries,
                doc_tags=tuple(c.meta.industries),
                constraints=constraints(ask, c.meta, caller_tenant=tenant),
                components=c.components,
                taxonomy=taxonomy,
                language=language or own,
                query_highlights=highlights,
                text_tags=text_tags,
            )
        return out

    return stage
