"""Digest and notification endpoints: run and preview digests, subscription preferences, one-click unsubscribe
(RFC 8058, no API key: the signed token is the credential), and webhook subscriptions with their delivery log."""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.deps import SessionDep, StateDep, permit
from api.errors import UNAVAILABLE_RESPONSES
from api.state import AppState
from matcher.digests.compose import FREQUENCIES, KINDS, CandidateSource, DigestComposer, period_start
from matcher.digests.runner import DigestRunner
from matcher.digests.send import EmailSender, SmtpSender
from matcher.digests.sources import EngineSource
from matcher.domain.permissions import authorize
from matcher.domain.tables import Enterprise
from matcher.errors import ServiceUnavailable, invalid
from matcher.notify import webhooks
from matcher.notify.delivery import EVENTS
from matcher.store import subscriptions
from matcher.store.keys import Caller

router = APIRouter(tags=["digests"], responses=UNAVAILABLE_RESPONSES)


# ---------------------------------------------------------------------------------------------- wiring
def get_digest_source(state: StateDep) -> CandidateSource:
    if state.matcher is None:
        raise ServiceUnavailable("the matching indexes are still loading; retry shortly")
    return EngineSource(state.matcher)


def get_email_sender(state: StateDep) -> EmailSender:
    return state.email_sender or SmtpSender.from_settings(state.settings)


SourceDep = Annotated[CandidateSource, Depends(get_digest_source)]
SenderDep = Annotated[EmailSender, Depends(get_email_sender)]


def _runner(state: AppState, source: CandidateSource, sender: EmailSender) -> DigestRunner:
    composer = DigestComposer(source, public_url=state.settings.public_url)
    return DigestRunner(state.settings, state.db, composer, sender)


def _check_period(period: str | None) -> None:
    if period is not None:
        try:
            period_start(period)
        except ValueError as exc:
            raise invalid("period", str(exc)) from None


# ---------------------------------------------------------------------------------------------- digests
class DigestRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str | None = Field(default=None, description="ISO week, e.g. 2026-W48; default the current week")
    # strict: a 0 or "false" that meant "dry run" must not send real mail
    dry_run: StrictBool = False


class DigestRunReport(BaseModel):
    period: str
    dry_run: bool
    sent: int
    skipped: int
    empty: int
    failed: int
    retry_later: int
    already_done: int
    errors: list[dict[str, Any]]
    previews: list[dict[str, Any]]


@router.post("/digests:run", response_model=DigestRunReport)
def run_digests(
    state: StateDep,
    caller: Annotated[Caller, permit("run", "digest")],
    source: SourceDep,
    sender: SenderDep,
    body: DigestRunRequest | None = None,
) -> DigestRunReport:
    """Compose and send this period's digests for the caller's enterprises (exactly once per period)."""
    body = body or DigestRunRequest()
    _check_period(body.period)
    try:
        report = _runner(state, source, sender).run(body.period, dry_run=body.dry_run, tenant=caller.tenant)
    finally:
        sender.close()
    if state.metrics is not None:
        state.metrics.observe_digests(report)
    return DigestRunReport(**report.as_dict())


class DigestPreview(BaseModel):
    enterprise_id: int
    period: str
    language: str
    subject: str
    html: str
    text: str
    items: list[dict[str, Any]]


@router.get("/digests/preview", response_model=DigestPreview, responses={200: {"content": {"text/html": {}}}})
def preview_digest(
    state: StateDep,
    session: SessionDep,
    caller: Annotated[Caller, permit("preview", "digest")],
    source: SourceDep,
    enterprise_id: int,
    period: str | None = None,
    format: Literal["json", "html"] = "json",
) -> Any:
    """Render one enterprise's digest without sending or recording anything."""
    _check_period(period)
    ent = subscriptions.get_subscription(session, tenant=caller.tenant, enterprise_id=enterprise_id)
    digest, rendered = _runner(state, source, sender=None).preview(session, ent, period)  # type: ignore[arg-type]
    if format == "html":
        return HTMLResponse(rendered.html)
    return DigestPreview(
        enterprise_id=ent.id,
        period=digest.period,
        language=digest.language,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        items=[i.to_dict() for i in digest.items],
    )


# ---------------------------------------------------------------------------------------------- subscription
class Subscription(BaseModel):
    enterprise_id: int
    email: str | None
    frequency: Literal["weekly", "biweekly", "off"]
    kinds: list[str]
    language: Literal["zh", "en"]
    unsubscribed: bool


class SubscriptionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    frequency: Literal["weekly", "biweekly", "off"] | None = None
    kinds: list[Literal["result", "scenario", "fund", "incubator"]] | None = Field(
        default=None, description="empty = every kind"
    )
    language: Literal["zh", "en"] | None = None
    unsubscribed: StrictBool | None = Field(
        default=None, description="false re-subscribes after an unsubscribe"
    )


def _subscription(ent: Enterprise) -> Subscription:
    return Subscription(
        enterprise_id=ent.id,
        email=ent.email,
        frequency=ent.digest_frequency if ent.digest_frequency in FREQUENCIES else "off",
        kinds=[k for k in ent.digest_kinds or [] if k in KINDS],
        language="en" if (ent.language or "").startswith("en") else "zh",
        unsubscribed=ent.unsubscribed,
    )


@router.get("/enterprises/{enterprise_id}/subscription", response_model=Subscription)
def get_subscription(
    enterprise_id: int, session: SessionDep, caller: Annotated[Caller, permit("read", "subscription")]
) -> Subscription:
    return _subscription(
        subscriptions.get_subscription(session, tenant=caller.tenant, enterprise_id=enterprise_id)
    )


@router.put("/enterprises/{enterprise_id}/subscription", response_model=Subscription)
def put_subscription(
    enterprise_id: int,
    body: SubscriptionUpdate,
    state: StateDep,
    session: SessionDep,
    caller: Annotated[Caller, permit("update", "subscription")],
) -> Subscription:
    if body.unsubscribed is False:
        ent = subscriptions.get_subscription(session, tenant=caller.tenant, enterprise_id=enterprise_id)
        if (
            ent.unsubscribed
        ):  # an unsubscribe (by the recipient's link, or by anyone) is lifted by an admin only
            authorize(caller, "resubscribe", "subscription", owner_tenant=ent.tenant_id)
    ent = subscriptions.update_subscription(
        session,
        tenant=caller.tenant,
        enterprise_id=enterprise_id,
        frequency=body.frequency,
        kinds=body.kinds,
        language=body.language,
        unsubscribed=body.unsubscribed,
        hub=state.hub,
        actor=caller,
    )
    return _subscription(ent)


# ---------------------------------------------------------------------------------------------- unsubscribe
class Unsubscribed(BaseModel):
    enterprise_id: int
    unsubscribed: bool


# signed by the service: only a token from a digest's unsubscribe link is valid, which the custom format says
TokenQuery = Annotated[
    str,
    Query(
        max_length=512,
        description="the token of a digest's unsubscribe link",
        json_schema_extra={"format": "parkmatch-unsubscribe-token"},
    ),
]

_CONFIRM = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Unsubscribe · 退订</title></head>
<body style="font-family:sans-serif;max-width:480px;margin:48px auto">
<p>停止接收园区匹配周报？<br>Stop receiving the parkmatch digest?</p>
<form method="post" action="{action}"><button type="submit">退订 Unsubscribe</button></form></body></html>"""


@router.get("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_page(state: StateDep, session: SessionDep, token: TokenQuery) -> HTMLResponse:
    """A confirmation page: a GET never unsubscribes (link scanners follow links), its button POSTs."""
    subscriptions.enterprise_for_token(session, token=token, secret=state.settings.resolved_secret())
    return HTMLResponse(_CONFIRM.format(action=html.escape(f"/v1/unsubscribe?token={token}", quote=True)))


@router.post("/unsubscribe", response_model=Unsubscribed)
def unsubscribe(state: StateDep, session: SessionDep, token: TokenQuery) -> Unsubscribed:
    """RFC 8058 one-click unsubscribe: the mail client POSTs `List-Unsubscribe=One-Click` here."""
    ent = subscriptions.unsubscribe(
        session, token=token, secret=state.settings.resolved_secret(), hub=state.hub
    )
    return Unsubscribed(enterprise_id=ent.id, unsubscribed=True)


# ---------------------------------------------------------------------------------------------- webhooks
class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000)
    events: list[Literal["match.created"]] = Field(default_factory=lambda: list(EVENTS))
    description: str = Field(default="", max_length=500)


class WebhookPublic(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str
    active: bool
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="shown once: verify X-Parkmatch-Signature with it")


class WebhooksPublic(BaseModel):
    data: list[WebhookPublic]
    count: int


class DeliveryPublic(BaseModel):
    id: int
    event_id: str
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    log: list[dict[str, Any]]
    created_at: datetime
    delivered_at: datetime | None


class DeliveriesPublic(BaseModel):
    data: list[DeliveryPublic]
    count: int


@router.post("/webhooks", response_model=WebhookCreated, status_code=201)
def create_webhook(
    body: WebhookCreate,
    state: StateDep,
    session: SessionDep,
    caller: Annotated[Caller, permit("create", "webhook")],
) -> WebhookCreated:
    sub = webhooks.create_webhook(
        session,
        tenant=caller.tenant,
        url=body.url,
        events=body.events,
        description=body.description,
        allow_private=state.settings.webhook_allow_private,
    )
    return WebhookCreated(**sub.model_dump())


@router.get("/webhooks", response_model=WebhooksPublic)
def list_webhooks(
    session: SessionDep, caller: Annotated[Caller, permit("read", "webhook")]
) -> WebhooksPublic:
    rows = webhooks.list_webhooks(session, tenant=caller.tenant)
    return WebhooksPublic(data=[WebhookPublic(**r.model_dump()) for r in rows], count=len(rows))


@router.delete("/webhooks/{webhook_id}", status_code=204)
def delete_webhook(
    webhook_id: int, session: SessionDep, caller: Annotated[Caller, permit("delete", "webhook")]
) -> Response:
    webhooks.delete_webhook(session, tenant=caller.tenant, webhook_id=webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=DeliveriesPublic)
def list_deliveries(
    webhook_id: int,
    session: SessionDep,
    caller: Annotated[Caller, permit("read", "webhook")],
    limit: int = Query(50, ge=1, le=500),
) -> DeliveriesPublic:
    rows = webhooks.list_deliveries(session, tenant=caller.tenant, webhook_id=webhook_id, limit=limit)
    return DeliveriesPublic(data=[DeliveryPublic(**r.model_dump()) for r in rows], count=len(rows))
