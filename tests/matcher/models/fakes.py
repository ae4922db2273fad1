"""An engine with the serving attributes the registry follower switches, and none of the indexes."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from matcher.matching.engine import MatchEngine
from matcher.matching.ranker import TransparentRanker


class FakeEngine(MatchEngine):
    def __init__(self, db: Engine | None = None) -> None:  # no indexes: the follower only switches rankers
        self.ranker = TransparentRanker()
        self.trial = None
        self.tenant_rankers = {}
        self.tenant_trials = {}
        self.db = db
