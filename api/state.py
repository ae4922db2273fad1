"""The heavy state one app instance owns (built in the lifespan, reached through dependencies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from matcher.domain.taxonomy import Taxonomy
from matcher.settings import Settings
from matcher.store.events import ChangeHub


@dataclass
class AppState:
    settings: Settings
    db: Engine
    hub: ChangeHub
    taxonomy: Taxonomy
    matcher: Any = None  # matcher.matching.engine.MatchEngine once the indexes are loaded
    extras: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
