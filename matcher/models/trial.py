"""Interleaved trials, the online half of safe promotion: the verdict a running service computes and carries out.

The offline comparison (`training.evaluation.compare.train_and_compare`) re-orders what users were shown and credits only
what they reacted to, so it cannot see a candidate's gains among matches the ranker in service never showed.
A candidate it cannot prove better, but which is not worse beyond the noise either, is put on **trial**:
while the trial runs, a share of match requests (`settings.trial_share`) serve a team-draft interleaving of
the two rankers' orders (`matcher.matching.interleave`), and each impression records the version of the ranker that
placed it. Every interleaved list that drew a positive outcome (contacted, accepted, deal) is one vote: for the
candidate when more of those outcomes fell on its items, for the incumbent when fewer, a tie otherwise.

Verdict, on the lists with a vote for one side (ties carry no information about the difference):

* **promote** when, at the planned number of votes (`settings.trial_votes`), the 95 % Wilson interval of the
  candidate's win share lies above 1/2: the candidate becomes the active ranker;
* **inconclusive** when, at that number, it does not: the trial ends and the incumbent stays (a later
  candidate, trained on more outcomes, may be tried again);
* **reject** as soon as the interval lies below 1/2 (with at least `MIN_VOTES` votes): stopping early for
  harm protects users and can only make promotion rarer;
* **continue** otherwise.

The promotion is decided at one look only. Checking a 95 % interval after every few votes and stopping at
the first that clears 1/2 would promote an equal ranker far more often than 5 % of the time; with a single
look the rate stays at the nominal 2.5 % (one side of the interval), which `tests/training/test_trial.py` checks by
simulation.

Interleaving exposes users to at most half of the candidate's picks while the evidence is gathered, and
position bias cancels out because both rankers take the top places equally often."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from matcher.domain.tables import Feedback, Impression
from matcher.matching.interleave import CANDIDATE, INCUMBENT, preference
from matcher.models.registry import SHARED, ModelRegistry
from matcher.store import audit

logger = logging.getLogger(__name__)

MIN_VOTES = 10
PLANNED_VOTES = 40
Z95 = 1.959963984540054
_CHUNK = 500
# outcomes that count as a success of the match; `clicked` alone is too noisy to be one
POSITIVE_ACTIONS = frozenset({"contacted", "accepted", "deal"})


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class TrialVerdict:
    model: str
    incumbent: str
    lists: int  # interleaved lists served
    lists_with_outcome: int  # ... that drew at least one positive outcome
    wins: int  # votes for the candidate
    losses: int  # votes for the incumbent
    ties: int
    win_share: float | None
    ci95: tuple[float, float]
    decision: str  # promote | reject | inconclusive | continue
    reason: str

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci95"] = [round(self.ci95[0], 4), round(self.ci95[1], 4)]
        d["win_share"] = None if self.win_share is None else round(self.win_share, 4)
        return d


def judge(
    wins: int, losses: int, *, planned: int = PLANNED_VOTES, min_votes: int = MIN_VOTES
) -> tuple[str, str, tuple[float, float]]:
    """(decision, reason, 95 % interval of the candidate's win share) from the votes; see the module docstring."""
    n = wins + losses
    lo, hi = wilson(wins, n)
    tally = f"the candidate won {wins} of {n} decided lists"
    if n >= min_votes and hi < 0.5:
        return "reject", f"{tally} (95 % interval below one half)", (lo, hi)
    if n < planned:
        return "continue", f"{tally}; judged at {planned}", (lo, hi)
    if lo > 0.5:
        return "promote", f"{tally} (95 % interval above one half)", (lo, hi)
    return "inconclusive", f"{tally}: no significant preference at the planned {planned}", (lo, hi)


def _chunks(items: list[str], size: int = _CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def votes(
    session: Session, model: str, *, since: datetime | None = None, tenant: str | None = None
) -> tuple[int, int, int, int, int]:
    """(lists, lists_with_outcome, wins, losses, ties) of the interleaved lists in which `model` placed items
    (with `tenant`, only the lists served to that tenant: a tenant's trial is judged by its own users).

    A list is identified by its request id; its items placed by `model` are the candidate's team, the others
    the incumbent's. Feedback counts only from the tenant the list was served to."""
    q = select(Impression.request_id).where(Impression.model_version == model).distinct()
    if tenant is not None:
        q = q.where(Impression.tenant_id == tenant)
    if since is not None:
        q = q.where(Impression.created_at >= since)
    requests = sorted({str(r) for r in session.exec(q)})
    lists = len(requests)
    with_outcome = wins = losses = ties = 0
    for chunk in _chunks(requests):
        teams: dict[str, dict[int, str]] = {}
        tenant_of: dict[str, str] = {}
        iq = select(Impression).where(Impression.request_id.in_(chunk))
        if tenant is not None:
            iq = iq.where(Impression.tenant_id == tenant)
        for imp in session.exec(iq):
            teams.setdefault(imp.request_id, {})[imp.resource_id] = (
                CANDIDATE if imp.model_version == model else INCUMBENT
            )
            tenant_of[imp.request_id] = imp.tenant_id
        positives: dict[str, set[int]] = {}
        fq = select(Feedback).where(Feedback.request_id.in_(chunk), Feedback.action.in_(POSITIVE_ACTIONS))
        for fb in session.exec(fq):
            if tenant_of.get(str(fb.request_id)) == fb.tenant_id:
                positives.setdefault(str(fb.request_id), set()).add(fb.resource_id)
        for rid, pos in positives.items():
            with_outcome += 1
            p = preference(teams.get(rid, {}), pos)
            wins += p > 0
            losses += p < 0
            ties += p == 0
    return lists, with_outcome, wins, losses, ties


def evaluate_trial(
    session: Session,
    registry: ModelRegistry,
    *,
    scope: str = SHARED,
    act: bool = True,
    planned: int = PLANNED_VOTES,
) -> TrialVerdict | None:
    """The verdict of `scope`'s running ranker trial (None when none runs); with `act`, carry it out in the
    registry: promote activates the candidate, reject and inconclusive end the trial, continue records the
    evidence. A tenant's trial counts only the lists served to that tenant; the shared one, every list its
    candidate placed items in (it is served only to tenants without a ranker of their own)."""
    t = registry.trial("ranker", scope=scope)
    if t is None:
        return None
    since = None
    if t.get("started_at"):
        try:
            since = datetime.fromisoformat(str(t["started_at"]))
        except ValueError:
            since = None
    tenant = None if scope == SHARED else scope
    lists, with_outcome, wins, losses, ties = votes(session, str(t["id"]), since=since, tenant=tenant)
    decision, reason, ci = judge(wins, losses, planned=planned)
    n = wins + losses
    verdict = TrialVerdict(
        model=str(t["id"]),
        incumbent=str(t.get("incumbent")),
        lists=lists,
        lists_with_outcome=with_outcome,
        wins=wins,
        losses=losses,
        ties=ties,
        win_share=wins / n if n else None,
        ci95=ci,
        decision=decision,
        reason=reason,
    )
    if not act:
        return verdict
    record = verdict.as_dict() | {"evaluated_at": datetime.now(UTC).isoformat()}
    who = audit.Actor(tenant=scope, name="trial-verdict")
    if decision == "promote":
        registry.record_trial(verdict.model, record)
        registry.activate(verdict.model)
        audit.record(
            session,
            who,
            "model.activate",
            record_type="model",
            record_id=verdict.model,
            summary={"trial": "promoted", "reason": reason},
            commit=True,
        )
        logger.info("ranker trial: %s promoted (%s)", verdict.model, reason)
    elif decision in ("reject", "inconclusive"):
        registry.end_trial("ranker", scope=scope, status="rejected", verdict=record)
        audit.record(
            session,
            who,
            "model.trial",
            record_type="model",
            record_id=verdict.model,
            summary={"trial": decision, "reason": reason},
            commit=True,
        )
        logger.info("ranker trial: %s ended, %s (%s)", verdict.model, decision, reason)
    else:
        registry.record_trial(verdict.model, record)
    return verdict
