"""An enterprise's digest subscription (frequency, kinds, language, unsubscribed): read, change, one-click unsubscribe.

The preferences are columns of the enterprise row, so a change follows the enterprise's write rules: only its own
tenant reads or changes them (another tenant's enterprise, public or not, reads as not found), `updated_at` moves
only when a value changes, and then the change is announced after commit like any enterprise update, because the
indexes compare `updated_at` with the stamps they hold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from matcher.digests.compose import FREQUENCIES, KINDS
from matcher.digests.tokens import verify_unsubscribe_token
from matcher.domain.tables import Enterprise
from matcher.domain.visibility import writable_by
from matcher.errors import NotFound, invalid
from matcher.store import audit
from matcher.store.db import valid_id
from matcher.store.events import ChangeHub, notify_after_commit
from matcher.store.keys import Caller
from matcher.store.rules import apply_changes, differences

LANGUAGES = ("zh", "en")


def get_subscription(session: Session, *, tenant: str, enterprise_id: int) -> Enterprise:
    """The enterprise whose digest the tenant owns; NotFound when it is missing or another tenant's."""
    row = session.get(Enterprise, enterprise_id) if valid_id(enterprise_id) else None
    if row is None or not writable_by(row, tenant):
        raise NotFound(f"enterprise {enterprise_id} not found")
    return row


def _check(field: str, values: Sequence[str], allowed: Sequence[str]) -> None:
    bad = [v for v in values if v not in allowed]
    if bad:
        raise invalid(field, f"{bad[0]!r} is not one of: {', '.join(allowed)}")


def _save(
    session: Session,
    row: Enterprise,
    changes: dict[str, Any],
    hub: ChangeHub | None,
    actor: Caller | audit.Actor,
    action: str,
) -> None:
    diff = differences(row, changes)
    if apply_changes(row, diff):
        session.add(row)
        summary = {"fields": sorted(diff)}
        audit.record(session, actor, action, record_type="enterprise", record_id=row.id, summary=summary)
        notify_after_commit(session, hub, "demand_changed", [], [row])
        session.commit()


def update_subscription(
    session: Session,
    *,
    tenant: str,
    enterprise_id: int,
    frequency: str | None = None,
    kinds: Sequence[str] | None = None,
    language: str | None = None,
    unsubscribed: bool | None = None,
    hub: ChangeHub | None = None,
    actor: Caller | None = None,
) -> Enterprise:
    """Set the preferences given (None leaves one as it is; empty kinds means every kind); committed. `actor` is
    who asks (audited; by default the operator of this process)."""
    row = get_subscription(session, tenant=tenant, enterprise_id=enterprise_id)
    changes: dict[str, Any] = {}
    if frequency is not None:
        _check("frequency", [frequency], FREQUENCIES)
        changes["digest_frequency"] = frequency
    if kinds is not None:
        _check("kinds", kinds, KINDS)
        changes["digest_kinds"] = list(dict.fromkeys(kinds))
    if language is not None:
        _check("language", [language], LANGUAGES)
        changes["language"] = language
    if unsubscribed is not None:
        changes["unsubscribed"] = unsubscribed
    who = actor or audit.Actor(tenant=tenant, name=audit.OPERATOR)
    _save(session, row, changes, hub, who, "subscription.update")
    return row


def enterprise_for_token(session: Session, *, token: str, secret: str) -> Enterprise:
    """The enterprise an unsubscribe token was signed for (the token is the credential, no tenant is involved);
    InvalidToken when it is forged or expired, NotFound when the enterprise is gone."""
    enterprise_id = verify_unsubscribe_token(token, secret)
    row = session.get(Enterprise, enterprise_id) if valid_id(enterprise_id) else None
    if row is None:
        raise NotFound("this subscription no longer exists")
    return row


def unsubscribe(session: Session, *, token: str, secret: str, hub: ChangeHub | None = None) -> Enterprise:
    """RFC 8058 one-click unsubscribe by signed token; unsubscribing twice changes nothing the second time."""
    row = enterprise_for_token(session, token=token, secret=secret)
    who = audit.Actor(tenant=row.tenant_id, name="unsubscribe-link")
    _save(session, row, {"unsubscribed": True}, hub, who, "unsubscribe")
    return row
