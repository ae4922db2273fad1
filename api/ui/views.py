"""What a result card shows, read from the match engine's explanation as the API returns it: highlighted terms,
constraints met / violated / unknown, and why the result has its rank, in words. Read defensively: an
explanation may lack a part (a list served without explanations, an older or newer engine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

from api.ui.i18n import translate
from matcher.domain.taxonomy import default_taxonomy

SNIPPET = 220  # characters of a description shown on a card


def _spans(explanation: dict[str, Any] | None, name: str) -> list[tuple[int, int]]:
    highlights = (explanation or {}).get("highlights") or {}
    out = []
    for h in highlights.get(name) or []:
        try:
            out.append((int(h["start"]), int(h["end"])))
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(out)


def marked(text: str, spans: list[tuple[int, int]], start: int = 0, end: int | None = None) -> Markup:
    """`text[start:end]` escaped, with the spans inside it in <mark>: markup never comes from the text itself."""
    end = len(text) if end is None else min(end, len(text))
    parts: list[str] = []
    pos = start
    for a, b in spans:
        a, b = max(a, pos), min(b, end)
        if a >= b:
            continue
        parts.append(str(escape(text[pos:a])))
        parts.append(f"<mark>{escape(text[a:b])}</mark>")
        pos = b
    parts.append(str(escape(text[pos:end])))
    return Markup("".join(parts))


def snippet(text: str, spans: list[tuple[int, int]], width: int = SNIPPET) -> Markup:
    """A window of the description around its first highlighted term."""
    if len(text) <= width:
        return marked(text, spans)
    first = spans[0][0] if spans else 0
    start = max(0, min(first - width // 4, len(text) - width))
    end = start + width
    out = marked(text, spans, start, end)
    return Markup(("…" if start else "") + out + ("…" if end < len(text) else ""))


def tag_labels(tags: list[str] | None, lang: str) -> list[str]:
    """Industry tags in the reader's language (a tag outside the taxonomy as it was written)."""
    tax = default_taxonomy()
    return [tax.label(t, lang) for t in tags or []]


def _value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, dict):
        lo, hi = v.get("min"), v.get("max")
        return f"{_value(lo)}–{_value(hi)}"
    if isinstance(v, list | tuple):
        return "、".join(str(x) for x in v) or "—"
    if isinstance(v, float):
        return f"{v:,.0f}" if v >= 100 else f"{v:g}"
    return str(v)


@dataclass
class ConstraintView:
    status: str  # met | violated | unknown
    label: str
    text: str


_ASKED = {"zh": "要求", "en": "asked"}
_WORDS = {
    "active": ("有效", "active"),
    "inactive": ("无效", "inactive"),
    "public": ("公开", "public"),
    "private": ("仅本园区", "private"),
    None: ("长期", "open-ended"),
}


def _word(value: Any, lang: str) -> str:
    if (value is None or isinstance(value, str)) and value in _WORDS:
        zh, en = _WORDS[value]
        return zh if lang == "zh" else en
    return _value(value)


def _constraint_text(c: dict[str, Any], label: str, lang: str) -> str:
    """'label: what the resource offers (asked: what the query asked)', tags and words in the reader's language."""
    name, asked, offered = str(c.get("name", "")), c.get("asked"), c.get("offered")
    if name == "industries":
        offered, asked = tag_labels(offered or [], lang), tag_labels(asked or [], lang)
    elif name == "kind":
        offered = translate(lang, f"kind.{offered}")
        asked = [translate(lang, f"kind.{k}") for k in asked or []]
    elif name == "stage":
        offered = [translate(lang, f"stage.{s}") for s in offered or []] or None
        asked = translate(lang, f"stage.{asked}") if asked else None
    if name in ("status", "visibility", "open_until"):
        return f"{label}: {_word(offered, lang)}"
    sep = "；" if lang == "zh" else "; "
    return f"{label}: {_word(offered, lang)}{sep}{_ASKED.get(lang, 'asked')} {_word(asked, lang)}"


def constraint_views(explanation: dict[str, Any] | None, lang: str) -> list[ConstraintView]:
    out = []
    for c in (explanation or {}).get("constraints") or []:
        status = str(c.get("status", "unknown"))
        if status not in ("met", "violated", "unknown"):
            status = "unknown"
        name = str(c.get("name", ""))
        label = translate(lang, f"c.{name}")
        label = name if label == f"c.{name}" else label
        out.append(ConstraintView(status, label, _constraint_text(c, label, lang)))
    # the violated and unknown first: what an officer must check
    order = {"violated": 0, "unknown": 1, "met": 2}
    return sorted(out, key=lambda v: order[v.status])


def why_words(rank: int, score: float, explanation: dict[str, Any] | None, lang: str) -> str:
    """The summary the engine writes, then the rank and the parts of its score in words."""
    ex = explanation or {}
    comp = ex.get("components") or {}
    relevance = comp.get("relevance")
    fit = comp.get("fit")
    fit_part = translate(lang, "card.fit_part", fit=f"{float(fit):.0%}") if fit is not None else ""
    rank_words = translate(
        lang,
        "card.rank_words",
        rank=rank,
        score=f"{score:.0%}",
        relevance="—" if relevance is None else f"{float(relevance):.0%}",
        fit=fit_part,
    )
    summary = str(ex.get("summary") or "").strip()
    return f"{summary}{'；' if lang == 'zh' else '; '}{rank_words}" if summary else rank_words


@dataclass
class Card:
    """One result as a card: the resource's public fields, the score and its explanation as people read it."""

    rank: int
    score: float
    id: int
    kind: str
    title: Markup
    snippet: Markup
    provider: str | None
    region: str | None
    industries: list[str]
    deadline: str | None
    terms: list[str]
    constraints: list[ConstraintView]
    why: str
    summary: str
    pinned: bool = False
    blocked: bool = False
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def deadline_of(kind: str, details: dict[str, Any] | None, valid_until: Any) -> str | None:
    raw = (details or {}).get("deadline") if kind == "scenario" else None
    value = raw or valid_until
    return str(value)[:10] if value else None


def resource_card(match: Any, lang: str) -> Card:
    """A card from one API `Match` (rank, score, resource: ResourcePublic, explanation)."""
    r = match.resource
    ex = match.explanation or {}
    return Card(
        rank=match.rank,
        score=float(match.score),
        id=r.id,
        kind=r.kind,
        title=marked(r.title, _spans(ex, "title")),
        snippet=snippet(r.description or "", _spans(ex, "description")),
        provider=r.provider,
        region=r.region,
        industries=tag_labels(r.industries, lang),
        deadline=deadline_of(r.kind, r.details, r.valid_until),
        terms=[str(t) for t in (ex.get("matched_terms") or [])][:12],
        constraints=constraint_views(ex, lang),
        why=why_words(match.rank, float(match.score), ex, lang),
        summary=str(ex.get("summary") or ""),
    )


def demand_card(match: Any, lang: str) -> Card:
    """A card from one API `DemandMatch` (a need or an enterprise a resource fits)."""
    ex = match.explanation or {}
    if match.need is not None:
        n = match.need
        title, text, kind, rid = n.title, n.description, "need", n.id
        region, industries = n.region, tag_labels(n.industries, lang)
        owner = match.enterprise.name if match.enterprise is not None else None
    else:
        e = match.enterprise
        title, text, kind, rid = e.name, e.description, "enterprise", e.id
        region, industries, owner = e.region, tag_labels(e.industries, lang), None
    return Card(
        rank=match.rank,
        score=float(match.score),
        id=rid,
        kind=kind,
        title=marked(title, _spans(ex, "title") or _spans(ex, "name")),
        snippet=snippet(text or "", _spans(ex, "description")),
        provider=owner,
        region=region,
        industries=industries,
        deadline=None,
        terms=[str(t) for t in (ex.get("matched_terms") or [])][:12],
        constraints=constraint_views(ex, lang),
        why=why_words(match.rank, float(match.score), ex, lang),
        summary=str(ex.get("summary") or ""),
        extra={"enterprise_id": match.enterprise.id if match.enterprise is not None else None},
    )
