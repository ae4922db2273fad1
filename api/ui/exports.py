"""Exports of result lists (a search, the enterprises and needs a resource fits) to XLSX and CSV. The rows are the
cards' contents; an export logs no impressions (nobody is shown the list)."""

from __future__ import annotations

import html
import re
from datetime import date
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep
from api.ui.auth import CsrfDep, SignedDep
from api.ui.errors import error_page
from api.ui.i18n import translate
from api.ui.render import language
from api.ui.resources import fits
from api.ui.search import SearchForm, run_search
from api.ui.views import Card
from matcher.exports import CSV_TYPE, XLSX_TYPE, to_csv, to_xlsx

router = APIRouter()
Format = Annotated[str, Query(pattern="^(xlsx|csv)$")]

HEADERS = {
    "zh": [
        "排名",
        "匹配度",
        "类型",
        "标题",
        "提供方/企业",
        "地区",
        "行业",
        "截止日期",
        "命中词",
        "满足的条件",
        "不满足的条件",
        "未知的条件",
        "排名理由",
        "编号",
        "链接",
    ],
    "en": [
        "rank",
        "score",
        "kind",
        "title",
        "provider / enterprise",
        "region",
        "industries",
        "deadline",
        "matched terms",
        "constraints met",
        "constraints violated",
        "constraints unknown",
        "why this rank",
        "id",
        "link",
    ],
}


def _plain(text: Markup | str) -> str:
    """A card's title as its words: the highlight marks off, the escaping undone (the file escapes for itself)."""
    return html.unescape(re.sub(r"</?mark>", "", str(text)))


def rows_of(cards: list[Card], lang: str, base_url: str) -> list[list[object]]:
    out = []
    for c in cards:
        by = {
            s: "; ".join(v.text for v in c.constraints if v.status == s)
            for s in ("met", "violated", "unknown")
        }
        path = {"enterprise": f"/ui/enterprises/{c.id}", "need": f"/ui/search?need_id={c.id}"}.get(
            c.kind, f"/ui/resources/{c.id}"
        )
        out.append(
            [
                c.rank,
                round(c.score, 4),
                translate(lang, f"kind.{c.kind}"),
                _plain(c.title),
                c.provider or "",
                c.region or "",
                "、".join(c.industries),
                c.deadline or "",
                "、".join(c.terms),
                by["met"],
                by["violated"],
                by["unknown"],
                c.why,
                c.id,
                f"{base_url.rstrip('/')}{path}",
            ]
        )
    return out


def download(
    rows: list[list[object]], lang: str, fmt: str, name: str, headers: list[str] | None = None
) -> Response:
    """`rows` as an attachment; `headers` are the columns' names (the result cards' by default)."""
    headers = headers or HEADERS[lang]
    stamp = date.today().isoformat()
    filename = f"parkmatch-{name}-{stamp}.{fmt}"
    disposition = f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
    if fmt == "xlsx":
        return Response(
            to_xlsx(headers, rows, title=name),
            media_type=XLSX_TYPE,
            headers={"Content-Disposition": disposition},
        )
    return Response(to_csv(headers, rows), media_type=CSV_TYPE, headers={"Content-Disposition": disposition})


@router.post("/export/search")
async def export_search(request: Request, state: StateDep, signed: CsrfDep) -> Response:
    """The search the form describes, run again (without impressions) and written as a file."""
    data = await request.form()
    fmt = data.get("format") if data.get("format") in ("xlsx", "csv") else "xlsx"
    form = SearchForm.read(data)
    lang = language(request)
    out = await run_in_threadpool(run_search, state, signed.caller, form, lang, log=False)
    if out.errors:
        return error_page(request, 422, translate(lang, "error.invalid"), " ".join(out.errors))
    return download(rows_of(out.cards, lang, str(request.base_url)), lang, str(fmt), "search")


@router.get("/export/fit/{resource_id}")
def export_fit(
    request: Request, state: StateDep, signed: SignedDep, resource_id: int, format: Format = "xlsx"
) -> Response:
    lang = language(request)
    cards, _ = fits(state, signed.caller, resource_id, lang, k=50)
    return download(rows_of(cards, lang, str(request.base_url)), lang, format, f"fit-{resource_id}")
