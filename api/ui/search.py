"""Search and match: free text, or an enterprise or need picked by name, with filters; the results as cards.

A search runs the API's own match path (api/routes/match.py `respond`): the same engine call, the same
impressions logged, the same explanations, so feedback on a card is feedback on a served match."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict

from api.deps import StateDep
from api.routes.match import MatchResponse, respond
from api.state import AppState
from api.ui.auth import CsrfDep, SignedDep, may
from api.ui.i18n import translate
from api.ui.render import language, page
from api.ui.views import Card, resource_card
from matcher.domain.schemas import RESOURCE_KINDS, _tags, normalize_stage
from matcher.domain.spellings import split_list
from matcher.errors import MatcherError, ServiceUnavailable
from matcher.matching.query import MatchQuery
from matcher.outcomes.feedback import REASONS
from matcher.store import curation, queries
from matcher.store.keys import Caller

router = APIRouter()
STAGES = ("seed", "startup", "growth", "mature")
K_CHOICES = (10, 20, 50)
_SUBJECT = re.compile(r"^\s*([EN])(\d{1,10})\b")
# far in the past: with "only open" unticked, expired resources are candidates too
LONG_AGO = date(2000, 1, 1)


@dataclass
class SearchForm:
    """The search as typed: every value kept as text, so that a page with an error shows it unchanged."""

    q: str = ""
    subject: str = ""
    kinds: list[str] = field(default_factory=list)
    industries: str = ""
    region: str = ""
    stage: str = ""
    amount: str = ""
    trl_min: str = ""
    trl_max: str = ""
    open_only: bool = True
    k: int = 20
    submitted: bool = False

    @classmethod
    def read(cls, data: ImmutableMultiDict | Any) -> SearchForm:
        def one(name: str, limit: int = 300) -> str:
            value = data.get(name)
            return value[:limit] if isinstance(value, str) else ""

        submitted = one("submitted") == "1"
        try:
            k = int(one("k") or 20)
        except ValueError:
            k = 20
        subject = one("subject")
        if not subject and one("enterprise_id").isdigit():
            subject = f"E{one('enterprise_id')}"
        if not subject and one("need_id").isdigit():
            subject = f"N{one('need_id')}"
        return cls(
            q=data.get("q") if isinstance(data.get("q"), str) else "",  # kept whole: its length is checked
            subject=subject,
            kinds=[k for k in data.getlist("kinds") if k in RESOURCE_KINDS],
            industries=one("industries"),
            region=one("region"),
            stage=one("stage"),
            amount=one("amount", 40),
            trl_min=one("trl_min", 4),
            trl_max=one("trl_max", 4),
            open_only=one("open_only") == "1" if submitted else True,
            k=k if k in K_CHOICES else 20,
            submitted=submitted,
        )

    @property
    def asked(self) -> bool:
        return bool(self.q.strip() or self.subject.strip())


@dataclass
class Subject:
    type: str  # enterprise | need
    id: int
    label: str
    enterprise_id: int | None  # whose curation applies (own tenant's only)


@dataclass
class Outcome:
    cards: list[Card] = field(default_factory=list)
    response: MatchResponse | None = None
    subject: Subject | None = None
    errors: list[str] = field(default_factory=list)


def resolve_subject(session: Session, caller: Caller, text: str, lang: str) -> Subject | str:
    """The enterprise or need a person picked ("E12 …" / "N5 …" from the list, or a name); a message if none
    or several fit."""
    names = queries.own_names(session, caller=caller)
    m = _SUBJECT.match(text)
    if m is not None:
        typ = "enterprise" if m.group(1) == "E" else "need"
        for t, i, label, _ in names:
            if t == typ and i == int(m.group(2)):
                return Subject(typ, i, label, None if typ == "need" else i)
    wanted = text.strip().lower()
    exact = [n for n in names if n[2].strip().lower() == wanted]
    found = exact or [n for n in names if wanted and wanted in n[2].lower()]
    if len(found) != 1:
        key = "search.subject_many" if found else "search.subject_unknown"
        return translate(lang, key, name=text.strip()[:80])
    t, i, label, _ = found[0]
    return Subject(t, i, label, i if t == "enterprise" else None)


def _number(text: str, lo: float, hi: float, name: str, errors: list[str], integer: bool = False) -> Any:
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        errors.append(f"{name}: {text[:20]}")
        return None
    if not lo <= value <= hi:
        errors.append(f"{name}: {lo:g}–{hi:g}")
        return None
    return value


def build_query(form: SearchForm, subject: Subject | None, lang: str) -> tuple[MatchQuery | None, list[str]]:
    errors: list[str] = []
    filters: dict[str, Any] = {"include_inactive": not form.open_only}
    if not form.open_only:
        filters["today"] = LONG_AGO
    if form.industries.strip():
        filters["industries"] = _tags(split_list(form.industries))
    if form.region.strip():
        filters["region"] = form.region.strip()
    if form.stage:
        stage = normalize_stage(form.stage)
        if stage in STAGES:
            filters["stage"] = stage
    for name, lo, hi, integer in (
        ("amount", 0, 1e13, False),
        ("trl_min", 1, 9, True),
        ("trl_max", 1, 9, True),
    ):
        value = _number(getattr(form, name), lo, hi, translate(lang, f"search.{name}"), errors, integer)
        if value is not None:
            filters[name] = value
    if errors:
        return None, errors
    q = MatchQuery(
        text=form.q.strip() or None,
        need_id=subject.id if subject is not None and subject.type == "need" else None,
        enterprise_id=subject.id if subject is not None and subject.type == "enterprise" else None,
        kinds=tuple(form.kinds),
        filters=filters,
        k=form.k,
        per_provider=0 if subject is None else None,
    )
    return q, []


def run_search(state: AppState, caller: Caller, form: SearchForm, lang: str, *, log: bool = True) -> Outcome:
    """Check the form, run the match as the API does, and make the cards; problems become messages. `log`
    False for a list that is not shown (an export): no impressions."""
    out = Outcome()
    limit = state.settings.max_query_chars
    if len(form.q) > limit:
        out.errors.append(translate(lang, "search.too_long", n=f"{len(form.q):,}", limit=f"{limit:,}"))
        return out
    if not form.asked:
        if form.submitted:
            out.errors.append(translate(lang, "search.empty"))
        return out
    with Session(state.db) as session:
        if form.subject.strip():
            found = resolve_subject(session, caller, form.subject, lang)
            if isinstance(found, str):
                out.errors.append(found)
                return out
            out.subject = found
    query, errors = build_query(form, out.subject, lang)
    if query is None:
        out.errors.extend(errors)
        return out
    if state.matcher is None:
        raise ServiceUnavailable("the matching indexes are still loading")
    try:
        out.response = respond(state, state.matcher, query, caller, log=log)
    except MatcherError as exc:
        if exc.status >= 500 or exc.status in (403, 404):
            raise
        out.errors.append(exc.detail)
        return out
    out.cards = [resource_card(m, lang) for m in out.response.matches]
    mark_curation(state, caller, out)
    return out


def mark_curation(state: AppState, caller: Caller, out: Outcome) -> None:
    """Show on each card whether it is pinned or blocked for the subject's enterprise, and its note."""
    subject = out.subject
    if subject is None or not may(caller, "read", "curation"):
        return
    with Session(state.db) as session:
        if subject.type == "need":
            from matcher.domain.tables import Need

            need = session.get(Need, subject.id)
            subject.enterprise_id = need.enterprise_id if need is not None else None
        if subject.enterprise_id is None:
            return
        rows = curation.list_curation(session, caller=caller, enterprise_id=subject.enterprise_id)
    for card in out.cards:
        row = rows.get(card.id)
        if row is not None:
            card.pinned, card.blocked, card.note = row.state == "pin", row.state == "block", row.note


def search_context(request: Request, state: AppState, caller: Caller, form: SearchForm, out: Outcome) -> dict:
    with Session(state.db) as session:
        names = queries.own_names(session, caller=caller)
    return {
        "form": form,
        "out": out,
        "names": names,
        "kinds": RESOURCE_KINDS,
        "stages": STAGES,
        "k_choices": K_CHOICES,
        "reasons": REASONS,
        "max_query": state.settings.max_query_chars,
        "can_curate": may(caller, "update", "curation"),
        "can_feedback": may(caller, "create", "feedback"),
    }


def render_search(request: Request, state: AppState, caller: Caller, form: SearchForm) -> Response:
    out = run_search(state, caller, form, language(request))
    status = 422 if out.errors else 200
    return page(request, "search.html", search_context(request, state, caller, form, out), status=status)


@router.get("/search")
def search_page(request: Request, state: StateDep, signed: SignedDep) -> Response:
    """A search by link (from an enterprise's or a need's page, or a bookmark)."""
    return render_search(request, state, signed.caller, SearchForm.read(request.query_params))


@router.post("/search")
async def search_post(request: Request, state: StateDep, signed: CsrfDep) -> Response:
    """The search form: posted, so that a long text fits and is checked here rather than refused in a URL."""
    form = SearchForm.read(await request.form())
    return await run_in_threadpool(render_search, request, state, signed.caller, form)
