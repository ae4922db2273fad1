"""The overview: the outcome funnel (shown -> contacted -> deal) per kind and per month, needs nobody serves and
resources never matched, from the same report as GET /v1/stats, drawn as SVG charts by the app."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session

from api.deps import StateDep
from api.ui.auth import SignedDep
from api.ui.charts import bar_chart, funnel_chart
from api.ui.i18n import translate
from api.ui.render import language, page
from matcher.domain.permissions import authorize
from matcher.outcomes.feedback import REASONS
from matcher.outcomes.report import funnel

router = APIRouter()


@router.get("/overview")
def overview(request: Request, state: StateDep, signed: SignedDep) -> Response:
    caller = signed.caller
    authorize(caller, "read", "stats", owner_tenant=caller.tenant)
    lang = language(request)
    with Session(state.db) as session:
        report = funnel(session, tenant=caller.tenant, threshold=0.5, engine=state.matcher, limit=50)
    stages = {s: translate(lang, f"ov.{s}") for s in ("shown", "contacted", "deals")}

    def kind_name(kind: str) -> str:
        name = translate(lang, f"kind.{kind}")
        return kind if name == f"kind.{kind}" else name

    kinds = [(kind_name(k), v) for k, v in report["by_kind"].items()]
    months = [(m, v) for m, v in report["by_month"].items()]
    labels = {r.code: (r.zh if lang == "zh" else r.en) for r in REASONS}
    reasons = [(labels.get(code, code), n) for code, n in report["rejection_reasons"].items()]
    ctx = {
        "report": report,
        "kind_name": kind_name,
        "kind_chart": funnel_chart(translate(lang, "ov.funnel_kind"), kinds, stages),
        "month_chart": funnel_chart(translate(lang, "ov.funnel_month"), months, stages),
        "reason_chart": bar_chart(translate(lang, "ov.reasons"), reasons) if reasons else None,
    }
    return page(request, "overview.html", ctx)
