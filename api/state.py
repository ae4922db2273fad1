"""The heavy state one app instance owns (built in the lifespan, reached through dependencies)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from api.metrics import ServiceMetrics
from matcher.digests.send import EmailSender
from matcher.domain.taxonomy import Taxonomy
from matcher.matching.engine import MatchEngine
from matcher.notify.delivery import WebhookDispatcher
from matcher.settings import Settings
from matcher.store.events import ChangeHub


@dataclass
class AppState:
    settings: Settings
    db: Engine
    hub: ChangeHub
    taxonomy: Taxonomy
    matcher: MatchEngine | None = None  # set once the indexes are loaded
    # the digest mail sender; None sends through the SMTP server the settings name (tests put a local one here)
    email_sender: EmailSender | None = None
    webhooks: WebhookDispatcher | None = None  # standing-match webhooks, once notifications started
    metrics: ServiceMetrics | None = None  # this app's Prometheus metrics
    ready: bool = False
