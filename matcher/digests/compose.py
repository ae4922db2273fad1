"""Choosing what goes into one enterprise's digest for one period.

For each subscribed enterprise: resources new or updated since its last sent digest that fit its open needs or
its profile above a threshold; never one already sent in an earlier digest, nor one the enterprise rejected or
acted on; at most a few per provider; a mix of kinds; a "closing soon" section for deadlines within two weeks."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from sqlmodel import Session, col, select

from matcher.domain.tables import Curation, DigestLog, Enterprise, Feedback, Need, as_utc

KINDS = ("result", "scenario", "fund", "incubator")
FREQUENCIES = ("weekly", "biweekly", "off")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)
_BIWEEKLY_EPOCH = date(2024, 1, 1)  # a Monday; even weeks since it are biweekly send weeks
_CHUNK = 500


# ---------------------------------------------------------------------------------------------- periods
def period_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def period_start(period: str) -> date:
    m = re.fullmatch(r"(\d{4})-W(\d{2})", period or "")
    if not m:
        raise ValueError(f"period {period!r}: expected an ISO week such as 2026-W48")
    try:
        return date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        raise ValueError(f"period {period!r}: no such ISO week") from None


def is_due(frequency: str, period: str) -> bool:
    """weekly: every ISO week; biweekly: every other one (counted from a fixed Monday, so years don't shift it)."""
    if frequency == "weekly":
        return True
    if frequency == "biweekly":
        return ((period_start(period) - _BIWEEKLY_EPOCH).days // 7) % 2 == 0
    return False


def valid_email(address: str | None) -> bool:
    return bool(address) and len(address) <= 254 and _EMAIL.match(address.strip()) is not None


def ineligible_reason(enterprise: Enterprise, period: str) -> str | None:
    """Why this enterprise gets no digest this period, or None when it is due one."""
    if enterprise.unsubscribed:
        return "unsubscribed"
    if enterprise.digest_frequency not in ("weekly", "biweekly"):
        return "digest frequency is off"
    if not is_due(enterprise.digest_frequency, period):
        return "biweekly digest: not due this week"
    if not enterprise.email or not enterprise.email.strip():
        return "no email address"
    if not valid_email(enterprise.email):
        return f"invalid email address {enterprise.email!r}"
    return None


# ---------------------------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class DemandQuery:
    """One search run for a digest: an open need, or the enterprise's profile when need_id is None."""

    tenant: str
    enterprise_id: int
    need_id: int | None
    text: str
    kinds: tuple[str, ...]
    exclude: frozenset[int]
    since: datetime | None
    today: date
    min_score: float
    language: str
    k: int
    pinned: frozenset[int] = frozenset()  # the park's pins for the enterprise: kept below min_score


@dataclass
class Suggestion:
    resource_id: int
    score: float
    kind: str
    title: str
    provider: str | None
    expires: date | None
    summary: str


class CandidateSource(Protocol):
    """Where suggestions come from: the match engine in production, an exact keyword scorer in small setups."""

    def prepare(self, queries: Sequence[DemandQuery]) -> None:
        """Batch work before many `suggest` calls (e.g. encoding every query text at once)."""

    def suggest(self, query: DemandQuery) -> list[Suggestion]: ...


# ---------------------------------------------------------------------------------------------- digest
@dataclass
class DigestItem:
    resource_id: int
    kind: str
    title: str
    provider: str | None
    score: float
    summary: str
    url: str
    section: str  # "new" | "closing"
    closes: str | None = None  # ISO date
    need_title: str | None = None  # the open need it fits; None = fits the profile

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DigestItem:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


@dataclass
class Digest:
    enterprise_id: int
    period: str
    language: str
    items: list[DigestItem] = field(default_factory=list)

    @property
    def new_items(self) -> list[DigestItem]:
        return [i for i in self.items if i.section == "new"]

    @property
    def closing_items(self) -> list[DigestItem]:
        return [i for i in self.items if i.section == "closing"]


@dataclass
class DigestPolicy:
    threshold: float = 0.35
    max_items: int = 8
    per_provider: int = 2
    closing_days: int = 14
    max_needs: int = 3  # the most recently updated open needs searched per enterprise
    per_query: int = 12
    first_lookback_days: int = 28  # window for an enterprise's first digest


def language_of(enterprise: Enterprise) -> str:
    return "en" if (enterprise.language or "").lower().startswith("en") else "zh"


def resource_url(public_url: str, resource_id: int) -> str:
    return f"{public_url.rstrip('/')}/v1/resources/{resource_id}"


def _chunks(values: Sequence[int]) -> Iterable[Sequence[int]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i : i + _CHUNK]


class DigestComposer:
    def __init__(
        self, source: CandidateSource, *, public_url: str, policy: DigestPolicy | None = None
    ) -> None:
        self.source = source
        self.public_url = public_url
        self.policy = policy or DigestPolicy()

    # ------------------------------------------------------------------ history loaded in bulk
    def _history(
        self, session: Session, enterprise_ids: list[int], period: str
    ) -> tuple[dict[int, list[Need]], dict[int, set[int]], dict[int, datetime], dict[int, set[int]]]:
        """Open needs, resources not to suggest again (sent, acted on, blocked), last sent digest, and pins."""
        needs: dict[int, list[Need]] = defaultdict(list)
        seen: dict[int, set[int]] = defaultdict(set)
        pins: dict[int, set[int]] = defaultdict(set)
        last_sent: dict[int, datetime] = {}
        need_owner: dict[int, int] = {}
        for chunk in _chunks(enterprise_ids):
            for n in session.exec(
                select(Need).where(col(Need.enterprise_id).in_(chunk), Need.status == "open")
            ):
                needs[n.enterprise_id].append(n)
            for n in session.exec(
                select(Need.id, Need.enterprise_id).where(col(Need.enterprise_id).in_(chunk))
            ):
                need_owner[n[0]] = n[1]
            for log in session.exec(
                select(DigestLog).where(col(DigestLog.enterprise_id).in_(chunk), DigestLog.period != period)
            ):
                if log.status in ("sent", "sending", "pending"):
                    seen[log.enterprise_id].update(int(i["resource_id"]) for i in log.items or [])
                if log.status == "sent":
                    at = as_utc(log.created_at)
                    if at and (log.enterprise_id not in last_sent or at > last_sent[log.enterprise_id]):
                        last_sent[log.enterprise_id] = at
            for fb in session.exec(select(Feedback).where(col(Feedback.enterprise_id).in_(chunk))):
                seen[fb.enterprise_id].add(fb.resource_id)
            # the park's curation: blocked resources are never suggested, pinned ones lead when new
            for cur in session.exec(
                select(Curation).where(
                    col(Curation.enterprise_id).in_(chunk), col(Curation.state).is_not(None)
                )
            ):
                (seen if cur.state == "block" else pins)[cur.enterprise_id].add(cur.resource_id)
        owned = list(need_owner)
        for chunk in _chunks(owned):
            for fb in session.exec(select(Feedback).where(col(Feedback.need_id).in_(chunk))):
                seen[need_owner[fb.need_id]].add(fb.resource_id)
        return needs, seen, last_sent, pins

    # ------------------------------------------------------------------ composition
    def queries_for(
        self,
        enterprise: Enterprise,
        needs: list[Need],
        *,
        exclude: frozenset[int],
        since: datetime | None,
        today: date,
        pinned: frozenset[int] = frozenset(),
    ) -> list[DemandQuery]:
        p = self.policy
        kinds = tuple(k for k in (enterprise.digest_kinds or []) if k in KINDS)
        common = dict(
            tenant=enterprise.tenant_id,
            enterprise_id=enterprise.id,
            exclude=exclude,
            since=since,
            today=today,
            min_score=p.threshold,
            language=language_of(enterprise),
            k=p.per_query,
            pinned=pinned,
        )
        out = []
        recent = sorted(
            needs, key=lambda n: as_utc(n.updated_at) or datetime.min.replace(tzinfo=UTC), reverse=True
        )
        for n in recent[: p.max_needs]:
            need_kinds = tuple(k for k in (n.kinds or []) if k in KINDS)
            if kinds and need_kinds:
                need_kinds = tuple(k for k in need_kinds if k in kinds) or kinds
            text = "\n".join(x for x in (n.title, n.description) if x).strip()
            if text:
                out.append(DemandQuery(need_id=n.id, text=text, kinds=need_kinds or kinds, **common))
        profile = "\n".join(x for x in (enterprise.name, enterprise.description) if x).strip()
        if profile:
            out.append(DemandQuery(need_id=None, text=profile, kinds=kinds, **common))
        return out

    def compose_many(
        self,
        session: Session,
        enterprises: Sequence[Enterprise],
        period: str,
        *,
        now: datetime | None = None,
        errors: dict[int, str] | None = None,
    ) -> dict[int, Digest]:
        """Digests for many enterprises with one batched pass over the candidate source.

        With `errors` given, one enterprise's failure is recorded there and the others go on."""
        now = now or datetime.now(UTC)
        today = now.date()
        ids = [e.id for e in enterprises]
        needs, seen, last_sent, pins = self._history(session, ids, period)
        first_since = now - timedelta(days=self.policy.first_lookback_days)
        plans: dict[int, list[DemandQuery]] = {}
        for e in enterprises:
            plans[e.id] = self.queries_for(
                e,
                needs.get(e.id, []),
                exclude=frozenset(seen.get(e.id, ())),
                since=last_sent.get(e.id, first_since),
                today=today,
                pinned=frozenset(pins.get(e.id, ())),
            )
        self.source.prepare([q for qs in plans.values() for q in qs])
        need_titles = {n.id: n.title for ns in needs.values() for n in ns}
        out = {}
        for e in enterprises:
            try:
                suggestions = [(q.need_id, s) for q in plans[e.id] for s in self.source.suggest(q)]
                pinned = frozenset(pins.get(e.id, ()))
                out[e.id] = self.select(e, period, suggestions, need_titles, today=today, pinned=pinned)
            except Exception as exc:
                if errors is None:
                    raise
                errors[e.id] = f"compose failed: {type(exc).__name__}: {exc}"
        return out

    def compose(
        self, session: Session, enterprise: Enterprise, period: str, *, now: datetime | None = None
    ) -> Digest:
        return self.compose_many(session, [enterprise], period, now=now)[enterprise.id]

    def select(
        self,
        enterprise: Enterprise,
        period: str,
        suggestions: list[tuple[int | None, Suggestion]],
        need_titles: dict[int, str],
        *,
        today: date,
        pinned: frozenset[int] = frozenset(),
    ) -> Digest:
        """The digest's items; `pinned` resources (the park's pins for this enterprise) pass the threshold and
        come first."""
        p = self.policy
        best: dict[int, tuple[int | None, Suggestion]] = {}
        for need_id, s in suggestions:
            if s.score < p.threshold and s.resource_id not in pinned:
                continue
            cur = best.get(s.resource_id)
            if cur is None or s.score > cur[1].score:
                best[s.resource_id] = (need_id, s)
        ranked = sorted(
            best.values(), key=lambda x: (x[1].resource_id not in pinned, -x[1].score, x[1].resource_id)
        )
        per_provider: dict[str, int] = defaultdict(int)
        by_kind: dict[str, list[tuple[int | None, Suggestion]]] = defaultdict(list)
        for need_id, s in ranked:
            key = (s.provider or "").strip().lower()
            if key:
                if per_provider[key] >= p.per_provider:
                    continue
                per_provider[key] += 1
            by_kind[s.kind].append((need_id, s))
        # round-robin over kinds (best kind first) so one kind cannot fill the whole email
        picked: list[tuple[int | None, Suggestion]] = []
        queues = sorted(by_kind.values(), key=lambda q: -q[0][1].score)
        while queues and len(picked) < p.max_items:
            for q in list(queues):
                picked.append(q.pop(0))
                if not q:
                    queues.remove(q)
                if len(picked) >= p.max_items:
                    break
        picked.sort(key=lambda x: (x[1].resource_id not in pinned, -x[1].score, x[1].resource_id))
        horizon = today + timedelta(days=p.closing_days)
        items = []
        for need_id, s in picked:
            closing = s.expires is not None and today <= s.expires <= horizon
            items.append(
                DigestItem(
                    resource_id=s.resource_id,
                    kind=s.kind,
                    title=s.title,
                    provider=s.provider,
                    score=round(s.score, 4),
                    summary=s.summary,
                    url=resource_url(self.public_url, s.resource_id),
                    section="closing" if closing else "new",
                    closes=s.expires.isoformat() if s.expires else None,
                    need_title=need_titles.get(need_id) if need_id is not None else None,
                )
            )
        items.sort(
            key=lambda i: (
                i.section != "closing",
                i.closes or "" if i.section == "closing" else "",
                i.resource_id not in pinned,
                -i.score,
            )
        )
        return Digest(
            enterprise_id=enterprise.id, period=period, language=language_of(enterprise), items=items
        )
