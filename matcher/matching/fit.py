"""Soft fit between what is asked (a need, an enterprise, or filters) and a candidate, and the constraint report.

Each feature is in [0, 1], or None when either side does not say (then it is 'unknown', never a guess)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from matcher.domain.regions import default_regions
from matcher.indexing.catalog import Meta

FIT_FEATURES = ("industry", "region", "stage", "amount", "trl", "recency", "deadline")


@dataclass
class Ask:
    """The structured side of a query: what the need or enterprise says about itself."""

    industries: frozenset[str] = frozenset()  # with taxonomy ancestors
    own_industries: tuple[str, ...] = ()
    region: str | None = None
    stage: str | None = None
    amount: float | None = None
    trl_min: int | None = None
    trl_max: int | None = None
    kinds: tuple[str, ...] = ()
    today: date = field(default_factory=date.today)


def _industry(ask_tags: frozenset[str], own: tuple[str, ...], cand: Meta) -> float | None:
    if not own or not cand.industries:
        return None
    hits = sum(1 for t in own if t in cand.industries)
    if hits:
        return min(1.0, 0.5 + 0.5 * hits / len(own))
    # share only a parent sector: a weaker fit
    return 0.3 if ask_tags & cand.industries else 0.0


def fit_features(ask: Ask, cand: Meta, *, now: float | None = None) -> dict[str, float | None]:
    now = now or time.time()
    f: dict[str, float | None] = dict.fromkeys(FIT_FEATURES)
    f["industry"] = _industry(ask.industries, ask.own_industries, cand)
    same_region = default_regions().fits(ask.region, cand.region)
    if same_region is not None:
        f["region"] = 1.0 if same_region else 0.0
    if cand.kind == "fund":
        if ask.stage and cand.stages:
            f["stage"] = 1.0 if ask.stage in cand.stages else 0.0
        if ask.amount is not None and (cand.ticket_min is not None or cand.ticket_max is not None):
            lo = cand.ticket_min or 0.0
            hi = cand.ticket_max if cand.ticket_max is not None else math.inf
            if lo <= ask.amount <= hi:
                f["amount"] = 1.0
            else:
                edge = lo if ask.amount < lo else hi
                f["amount"] = max(0.0, 1.0 - abs(math.log((ask.amount + 1) / (edge + 1))))
    elif cand.kind == "result":
        if cand.trl:
            if ask.trl_min:
                f["trl"] = 1.0 if cand.trl >= ask.trl_min else max(0.0, 1.0 - (ask.trl_min - cand.trl) / 4)
            else:
                f["trl"] = cand.trl / 9
        price = cand.extra.get("price")
        if ask.amount is not None and price:
            f["amount"] = 1.0 if price <= ask.amount else max(0.0, ask.amount / price)
    elif cand.kind == "scenario":
        budget = cand.budget
        if ask.amount is not None and budget:
            f["amount"] = 1.0 if budget >= ask.amount else max(0.0, budget / ask.amount)
    if cand.updated:
        age_days = max(0.0, (now - cand.updated) / 86400)
        f["recency"] = math.exp(-age_days / 180)
    if cand.deadline is not None:
        days = (cand.deadline - ask.today).days
        # open long enough to apply, and the sooner it closes the more it matters now
        f["deadline"] = 0.3 if days < 3 else max(0.4, math.exp(-days / 60))
    return f


def constraints(ask: Ask, cand: Meta, *, caller_tenant: str) -> list[dict[str, Any]]:
    """Each hard or soft constraint: met / violated / unknown, with both sides' values."""
    out: list[dict[str, Any]] = []

    def add(name: str, status: str, asked: Any, offered: Any, hard: bool = True) -> None:
        out.append({"name": name, "status": status, "asked": asked, "offered": offered, "hard": hard})

    if ask.kinds:
        add("kind", "met" if cand.kind in ask.kinds else "violated", list(ask.kinds), cand.kind)
    add("status", "met" if cand.active else "violated", "active", "active" if cand.active else "inactive")
    if cand.expires is not None:
        add(
            "open_until",
            "met" if cand.expires >= ask.today else "violated",
            ask.today.isoformat(),
            cand.expires.isoformat(),
        )
    else:
        add("open_until", "met", ask.today.isoformat(), None)
    add(
        "visibility",
        "met" if cand.public or cand.tenant == caller_tenant else "violated",
        "visible to caller",
        "public" if cand.public else "private",
    )
    if ask.own_industries:
        common = sorted(set(ask.own_industries) & cand.industries)
        if not cand.industries:
            add("industries", "unknown", list(ask.own_industries), [], hard=False)
        else:
            add(
                "industries",
                "met" if common else "violated",
                list(ask.own_industries),
                list(cand.own_industries),
                hard=False,
            )
    if ask.region:
        ok = default_regions().fits(ask.region, cand.region)
        if ok is not None:
            add("region", "met" if ok else "violated", ask.region, cand.region, hard=False)
        else:
            add("region", "unknown", ask.region, None, hard=False)
    if cand.kind == "fund":
        if ask.stage:
            if cand.stages:
                add("stage", "met" if ask.stage in cand.stages else "violated", ask.stage, list(cand.stages))
            else:
                add("stage", "unknown", ask.stage, None)
        if ask.amount is not None:
            if cand.ticket_min is None and cand.ticket_max is None:
                add("ticket", "unknown", ask.amount, None)
            else:
                lo, hi = cand.ticket_min, cand.ticket_max
                ok = (lo is None or lo <= ask.amount) and (hi is None or ask.amount <= hi)
                add("ticket", "met" if ok else "violated", ask.amount, {"min": lo, "max": hi})
    if cand.kind == "result" and (ask.trl_min or ask.trl_max):
        if cand.trl:
            ok = (ask.trl_min or 1) <= cand.trl <= (ask.trl_max or 9)
            add("trl", "met" if ok else "violated", {"min": ask.trl_min, "max": ask.trl_max}, cand.trl)
        else:
            add("trl", "unknown", {"min": ask.trl_min, "max": ask.trl_max}, None)
    return out
