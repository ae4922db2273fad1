"""The encoder's training data from the store: resources as records, and accepted/rejected matches per need
(`matcher train encoder`), split by time for the held-out evaluation."""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime

from sqlmodel import Session, select

from matcher.domain.tables import Feedback, Need, Resource
from matcher.domain.taxonomy import default_taxonomy
from matcher.indexing.documents import need_text, resource_text
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine


class EncoderData:
    """Resources as training records; accepted/dealt and rejected resources per need, with the texts."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.resource_text: dict[int, str] = {}
        self.need_text: dict[int, str] = {}
        self.positives: dict[int, list[int]] = {}  # need -> accepted/dealt resources, in feedback order
        self.negatives: dict[int, list[int]] = {}  # need -> rejected resources (never accepted)
        self.first_seen: dict[int, datetime] = {}  # need -> time of its first accepted/dealt feedback

    def pairs(self, needs: Iterable[int], *, seed: int = 0) -> list[tuple[str, str, str | None]]:
        """(need text, accepted resource text, a rejected resource text or None) for each accepted match."""
        rng = random.Random(seed)
        out = []
        for n in needs:
            negs = [self.resource_text[r] for r in self.negatives.get(n, [])]
            for r in self.positives.get(n, []):
                out.append((self.need_text[n], self.resource_text[r], rng.choice(negs) if negs else None))
        return out


def encoder_training_data(settings: Settings) -> EncoderData:
    """Active resources as training records, and the store's accepted/dealt and rejected matches per need
    (each feedback event counted only with a need and a resource of its own tenant)."""
    taxonomy = default_taxonomy()
    data = EncoderData()
    db = make_engine(settings)
    init_db(db)
    try:
        with Session(db) as session:
            resources = {r.id: r for r in session.exec(select(Resource).where(Resource.status == "active"))}
            for r in resources.values():
                data.records.append(
                    {
                        "id": f"r{r.id}",
                        "title": r.title,
                        "text": r.description,
                        "keywords": [str(k) for k in (r.details or {}).get("keywords") or []],
                    }
                )
            feedback = session.exec(
                select(Feedback)
                .where(Feedback.action.in_(("accepted", "deal", "rejected")), Feedback.need_id.is_not(None))
                .order_by(Feedback.created_at, Feedback.id)
            )
            accepted: dict[int, list[int]] = {}
            rejected: dict[int, list[int]] = {}
            for fb in feedback:
                res = resources.get(fb.resource_id)
                if res is None or res.tenant_id != fb.tenant_id:
                    continue
                if fb.need_id not in data.need_text:
                    need = session.get(Need, fb.need_id)
                    if need is None or need.tenant_id != fb.tenant_id:
                        continue
                    data.need_text[fb.need_id] = need_text(
                        title=need.title,
                        description=need.description,
                        industries=list(need.industries or []),
                        taxonomy=taxonomy,
                    )
                target = rejected if fb.action == "rejected" else accepted
                if fb.resource_id not in target.setdefault(fb.need_id, []):
                    target[fb.need_id].append(fb.resource_id)
                if fb.action != "rejected":
                    data.first_seen.setdefault(fb.need_id, fb.created_at)
                if fb.resource_id not in data.resource_text:
                    data.resource_text[fb.resource_id] = resource_text(
                        kind=res.kind,
                        title=res.title,
                        description=res.description,
                        industries=list(res.industries or []),
                        details=dict(res.details or {}),
                        taxonomy=taxonomy,
                    )
            data.positives = {n: rs for n, rs in accepted.items() if rs}
            data.negatives = {
                n: [r for r in rs if r not in set(accepted.get(n, []))] for n, rs in rejected.items()
            }
    finally:
        db.dispose()
    return data


def time_split(data: EncoderData, test_size: float) -> tuple[list[int], list[int]]:
    """Needs ordered by their first accepted match: the older part trains, the newest ``test_size`` is held
    out, so no need (query) and no later outcome is on both sides."""
    order = sorted(data.positives, key=lambda n: (data.first_seen[n], n))
    n_test = max(1, int(round(len(order) * test_size)))
    return sorted(order[: len(order) - n_test]), sorted(order[len(order) - n_test :])
