"""Labelled ranker rows, grouped by served list: from logged impressions + feedback, or from BEIR qrels.

A group is one served list (a request_id, or a benchmark query). Each row holds the features the ranker saw
for one candidate, its label (1 = positive outcome), the position it was shown at, and the item id. The
`relevant` map keeps every known relevant item of a group, also those the candidates missed, so that nDCG
is measured against the full set and not only what retrieval happened to find."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from matcher.domain.tables import Feedback, Impression
from matcher.matching.engine import MatchEngine
from matcher.matching.retrieval import Candidate
from matcher.models.trial import POSITIVE_ACTIONS

NEGATIVE_ACTIONS = frozenset({"rejected"})


@dataclass
class LabelledRows:
    rows: list[dict[str, float | None]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    relevant: dict[str, dict[str, int]] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    # group -> the unit a held-out split keeps together (lists served for one need); absent: the group itself
    units: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def n_groups(self) -> int:
        return len(set(self.groups))

    @property
    def n_positive(self) -> int:
        return int(sum(1 for v in self.labels if v > 0))

    def add(self, group: str, item: str, row: dict[str, float | None], label: int, position: int) -> None:
        self.rows.append(row)
        self.labels.append(int(label))
        self.groups.append(group)
        self.positions.append(int(position))
        self.items.append(item)
        if label > 0:
            self.relevant.setdefault(group, {})[item] = int(label)

    def subset(self, groups: Iterable[str]) -> LabelledRows:
        keep = set(groups)
        out = LabelledRows(source=dict(self.source))
        for i, g in enumerate(self.groups):
            if g in keep:
                out.rows.append(self.rows[i])
                out.labels.append(self.labels[i])
                out.groups.append(g)
                out.positions.append(self.positions[i])
                out.items.append(self.items[i])
        out.relevant = {g: dict(r) for g, r in self.relevant.items() if g in keep}
        out.units = {g: u for g, u in self.units.items() if g in keep}
        return out

    def extend(self, other: LabelledRows) -> None:
        self.rows += other.rows
        self.labels += other.labels
        self.groups += other.groups
        self.positions += other.positions
        self.items += other.items
        for g, r in other.relevant.items():
            self.relevant.setdefault(g, {}).update(r)
        self.units.update(other.units)


def _row(features: dict[str, Any]) -> dict[str, float | None]:
    return {k: (None if v is None else float(v)) for k, v in features.items()}


def from_feedback(session: Session, *, tenant: str | None = None) -> LabelledRows:
    """Impressions of every request that got at least one feedback event, labelled by its outcomes; with
    `tenant`, only that tenant's impressions and feedback are read (a tenant's ranker never learns from
    another tenant's users).

    Lists served for the same need (or enterprise) share a unit (`LabelledRows.units`), so a held-out split
    never trains on one of them and scores another. Lists nobody reacted to are left out: whether anyone looked at them is unknown, so their rows would
    only add negatives of unknown meaning. Position bias within an engaged list is handled by the ranker's
    inverse-propensity weights."""
    fq = select(Feedback).where(Feedback.request_id.is_not(None))
    if tenant is not None:
        fq = fq.where(Feedback.tenant_id == tenant)
    outcome: dict[tuple[str, str, int], int] = {}
    for fb in session.exec(fq):
        key = (fb.tenant_id, str(fb.request_id), fb.resource_id)
        if fb.action in POSITIVE_ACTIONS:
            outcome[key] = 1
        elif fb.action in NEGATIVE_ACTIONS and outcome.get(key) != 1:
            outcome[key] = 0
        else:
            outcome.setdefault(key, 0)
    requests = sorted({(t, r) for t, r, _ in outcome})
    out = LabelledRows(source={"kind": "feedback", "tenant": tenant})
    if not requests:
        return out
    req_ids = sorted({r for _, r in requests})
    tenants = {t for t, _ in requests}
    for start in range(0, len(req_ids), 500):
        chunk = req_ids[start : start + 500]
        iq = select(Impression).where(Impression.request_id.in_(chunk)).order_by(Impression.id)
        if tenant is not None:
            iq = iq.where(Impression.tenant_id == tenant)
        seen: set[tuple[str, int]] = set()
        for imp in session.exec(iq):
            if imp.tenant_id not in tenants or (imp.request_id, imp.resource_id) in seen:
                continue
            seen.add((imp.request_id, imp.resource_id))
            label = outcome.get((imp.tenant_id, imp.request_id, imp.resource_id), 0)
            group = f"{imp.tenant_id}:{imp.request_id}"
            if imp.need_id is not None:  # lists served for one need are one unit of the held-out split
                out.units[group] = f"{imp.tenant_id}:need:{imp.need_id}"
            elif imp.enterprise_id is not None:
                out.units[group] = f"{imp.tenant_id}:enterprise:{imp.enterprise_id}"
            out.add(
                group,
                str(imp.resource_id),
                _row(imp.features),
                label,
                imp.position,
            )
    return out


def candidate_rows(candidates: Sequence[Candidate]) -> list[dict[str, float | None]]:
    """The feature rows the engine's ranker saw for these candidates."""
    return [c.features() for c in candidates]


def from_qrels(
    engine: MatchEngine,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    ids: dict[int, str],
    *,
    k: int = 100,
    tenant: str = "eval",
) -> LabelledRows:
    """Run each judged query through the production match path and label its candidates from the qrels."""
    from training.evaluation.match_eval import match_text

    out = LabelledRows(source={"kind": "qrels", "queries": 0, "k": k})
    for qid, text in queries.items():
        rel = {d: g for d, g in qrels.get(qid, {}).items() if g > 0}
        if not rel:
            continue
        outcome = match_text(engine, text, k=k, tenant=tenant)
        rows = candidate_rows(outcome.candidates)
        for pos, (c, row) in enumerate(zip(outcome.candidates, rows, strict=True), start=1):
            doc = ids[c.id]
            out.add(qid, doc, row, 1 if rel.get(doc, 0) > 0 else 0, pos)
        out.relevant[qid] = dict(rel)  # every judged relevant document, retrieved or not
        out.source["queries"] += 1
    return out
