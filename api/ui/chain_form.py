"""The form that creates an industry chain: the chain's fields and one row per link, read as typed (to show
again) and turned into the body POST /v1/chains validates (ChainCreate, so the same rules and messages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from matcher.errors import MatcherError

CHAIN_FIELDS = ("name_zh", "name_en", "description", "gap_threshold", "min_score", "max_links_per_record")
LINK_FIELDS = ("key", "name_zh", "name_en", "stage", "feeds", "description", "industries", "keywords")
LISTS = ("feeds", "industries", "keywords")
DEFAULT_ROWS = 4
MAX_ROWS = 60
DEFAULTS = {"gap_threshold": "3", "min_score": "0.3", "max_links_per_record": "2"}


@dataclass
class ChainForm:
    """The form as shown: the chain's values, each link row's values, and the problems (per field and in all)."""

    values: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    rows: list[dict[str, str]] = field(default_factory=lambda: [{} for _ in range(DEFAULT_ROWS)])
    errors: dict[str, str] = field(default_factory=dict)
    summary: str | None = None


def _text(form: FormData, name: str, limit: int = 20000) -> str:
    v = form.get(name)
    return v.replace("\r\n", "\n")[:limit] if isinstance(v, str) else ""


def read(form: FormData) -> ChainForm:
    """The posted form as typed; `more` asks for one more empty link row."""
    out = ChainForm(values={name: _text(form, name) for name in CHAIN_FIELDS})
    out.values["shared"] = form.get("shared") == "1"
    try:
        n = int(str(form.get("rows") or DEFAULT_ROWS))
    except ValueError:
        n = DEFAULT_ROWS
    n = max(1, min(n, MAX_ROWS))
    out.rows = [{f: _text(form, f"links.{i}.{f}", 2000) for f in LINK_FIELDS} for i in range(n)]
    if form.get("more") and len(out.rows) < MAX_ROWS:
        out.rows.append({})
    return out


def _list(text: str) -> list[str]:
    return [x.strip() for x in text.replace("，", ",").replace("、", ",").split(",") if x.strip()]


def _number(text: str) -> Any:
    """A typed number as JSON would carry it; anything else as typed, for the model to refuse."""
    plain = text.strip()
    for kind in (int, float):
        try:
            return kind(plain)
        except ValueError:
            continue
    return plain


def body(f: ChainForm) -> tuple[dict[str, Any], list[int]]:
    """The ChainCreate body, and for each link sent the row it came from (empty rows are not sent)."""
    data: dict[str, Any] = {"name_zh": f.values.get("name_zh", ""), "shared": bool(f.values.get("shared"))}
    for name in ("name_en", "description"):
        if f.values.get(name, "").strip():
            data[name] = f.values[name]
    for name in ("gap_threshold", "min_score", "max_links_per_record"):
        if str(f.values.get(name, "")).strip():
            value = _number(f.values[name])
            data[name] = float(value) if name == "min_score" and isinstance(value, int) else value
    links, rows = [], []
    for i, row in enumerate(f.rows):
        if not any(str(v).strip() for v in row.values()):
            continue
        link: dict[str, Any] = {"name_zh": row.get("name_zh", "")}
        for name in ("key", "name_en", "stage", "description"):
            if row.get(name, "").strip():
                link[name] = row[name].strip() if name != "description" else row[name]
        for name in LISTS:
            if row.get(name, "").strip():
                link[name] = _list(row[name])
        links.append(link)
        rows.append(i)
    data["links"] = links
    return data, rows


def problems(f: ChainForm, exc: MatcherError, rows: list[int]) -> ChainForm:
    """The refusal's messages on the fields they name, a link's index turned back into its row on the form."""
    f.summary = exc.detail
    for e in exc.errors or []:
        parts = str(e.get("field", "")).removeprefix("body.").split(".")
        if len(parts) >= 2 and parts[0] == "links" and parts[1].isdigit():
            k = int(parts[1])
            parts[1] = str(rows[k]) if k < len(rows) else parts[1]
            parts = parts[:3]  # links.2.feeds.0 is row 2's feeds box
        elif parts and parts[0] != "links":
            parts = parts[:1]
        f.errors.setdefault(".".join(parts), str(e.get("message", "")))
    return f
