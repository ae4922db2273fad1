"""Exports of the record lists (enterprises, resources by kind, scenarios closing soon) to XLSX and CSV: the rows
the list shows the signed-in person, over all its pages, with the same filters and the same tenant visibility, as
the public profile the API gives that caller (another tenant's record never brings its contact or tenant)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import StateDep
from api.ui.auth import SignedDep
from api.ui.exports import Format, download
from api.ui.i18n import translate
from api.ui.render import language
from api.ui.resources import closing_soon
from api.ui.views import deadline_of, tag_labels
from matcher.domain.schemas import RESOURCE_KINDS
from matcher.store import queries
from matcher.store.keys import Caller
from matcher.store.public import to_public_enterprise, to_public_resource

router = APIRouter()
MAX_ROWS = 10_000  # the most rows one file holds; the lists page through at most this many records
PAGE = queries.MAX_LIMIT
Search = Annotated[str | None, Query(max_length=300)]

COLUMNS = {
    "enterprises": {
        "zh": ["编号", "名称", "行业", "地区", "阶段", "简介", "可见范围", "链接"],
        "en": ["id", "name", "industries", "region", "stage", "description", "visibility", "link"],
    },
    "resources": {
        "zh": ["编号", "标题", "类型", "提供方", "行业", "地区", "状态", "截止日期", "可见范围", "链接"],
        "en": [
            "id",
            "title",
            "kind",
            "provider",
            "industries",
            "region",
            "status",
            "deadline",
            "visibility",
            "link",
        ],
    },
    "closing": {
        "zh": ["编号", "标题", "提供方", "地区", "截止日期", "剩余天数", "链接"],
        "en": ["id", "title", "provider", "region", "deadline", "days left", "link"],
    },
}


def _all_pages(fetch: Callable[[str | None, int], tuple[list[Any], str | None]]) -> list[Any]:
    """Every row of a paged list, in the list's order, up to MAX_ROWS."""
    rows: list[Any] = []
    cursor: str | None = None
    while len(rows) < MAX_ROWS:
        page_rows, cursor = fetch(cursor, min(PAGE, MAX_ROWS - len(rows)))
        rows.extend(page_rows)
        if cursor is None or not page_rows:
            break
    return rows


def _link(request: Request, path: str) -> str:
    return f"{str(request.base_url).rstrip('/')}{path}"


def enterprise_rows(
    session: Session, caller: Caller, q: str | None, lang: str, base: Request
) -> list[list[Any]]:
    found = _all_pages(
        lambda cursor, limit: queries.list_enterprises(
            session, caller=caller, q=q, cursor=cursor, limit=limit
        )
    )
    out = []
    for row in found:
        e = to_public_enterprise(row, caller)
        out.append(
            [
                e.id,
                e.name,
                "、".join(tag_labels(e.industries, lang)),
                e.region or "",
                translate(lang, f"stage.{e.stage}") if e.stage else "",
                e.description or "",
                e.visibility,
                _link(base, f"/ui/enterprises/{e.id}"),
            ]
        )
    return out


def resource_rows(
    session: Session, caller: Caller, kind: str | None, q: str | None, lang: str, base: Request
) -> list[list[Any]]:
    found = _all_pages(
        lambda cursor, limit: queries.list_resources(
            session, caller=caller, kind=kind, q=q, cursor=cursor, limit=limit
        )
    )
    out = []
    for row in found:
        r = to_public_resource(row, caller)
        out.append(
            [
                r.id,
                r.title,
                translate(lang, f"kind.{r.kind}"),
                r.provider or "",
                "、".join(tag_labels(r.industries, lang)),
                r.region or "",
                r.status,
                deadline_of(r.kind, r.details, r.valid_until) or "",
                r.visibility,
                _link(base, f"/ui/resources/{r.id}"),
            ]
        )
    return out


@router.get("/export/enterprises")
def export_enterprises(
    request: Request, state: StateDep, signed: SignedDep, q: Search = None, format: Format = "xlsx"
) -> Response:
    lang = language(request)
    with Session(state.db) as session:
        rows = enterprise_rows(session, signed.caller, q, lang, request)
    return download(rows, lang, format, "enterprises", COLUMNS["enterprises"][lang])


@router.get("/export/resources")
def export_resources(
    request: Request,
    state: StateDep,
    signed: SignedDep,
    kind: Annotated[str | None, Query(max_length=20)] = None,
    q: Search = None,
    format: Format = "xlsx",
) -> Response:
    lang = language(request)
    kind = kind if kind in RESOURCE_KINDS else None
    with Session(state.db) as session:
        rows = resource_rows(session, signed.caller, kind, q, lang, request)
    return download(
        rows, lang, format, f"resources-{kind}" if kind else "resources", COLUMNS["resources"][lang]
    )


@router.get("/export/closing")
def export_closing(request: Request, state: StateDep, signed: SignedDep, format: Format = "xlsx") -> Response:
    lang = language(request)
    with Session(state.db) as session:
        found = closing_soon(session, signed.caller, date.today())
        rows = [
            [
                x["r"].id,
                x["r"].title,
                x["r"].provider or "",
                x["r"].region or "",
                x["deadline"].isoformat(),
                x["days"],
                _link(request, f"/ui/resources/{x['r'].id}"),
            ]
            for x in found
        ]
    return download(rows, lang, format, "closing", COLUMNS["closing"][lang])
