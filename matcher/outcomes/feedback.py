"""Outcome feedback on served matches: the fixed actions and bilingual reasons, validation, and storage.

Feedback is only accepted for a match that was actually shown: the (request_id, resource_id) pair must have an
impression logged for the caller's tenant. Records the caller cannot see are reported as not found, so a
tenant cannot probe another tenant's ids."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from sqlmodel import Session, select

from matcher.domain.tables import Feedback, Impression, Need, Resource
from matcher.errors import NotFound, invalid
from matcher.store.keys import Caller

Action = Literal["clicked", "contacted", "accepted", "rejected", "deal"]
ACTIONS: tuple[str, ...] = get_args(Action)

Reason = Literal[
    "too_early",
    "budget_mismatch",
    "region_mismatch",
    "already_known",
    "unclear",
    "not_relevant",
    "other",
]


@dataclass(frozen=True)
class ReasonLabel:
    code: str
    en: str
    zh: str


REASONS: tuple[ReasonLabel, ...] = (
    ReasonLabel("too_early", "too early / TRL mismatch", "技术成熟度不足"),
    ReasonLabel("budget_mismatch", "budget or amount mismatch", "预算或额度不符"),
    ReasonLabel("region_mismatch", "region mismatch", "地区不符"),
    ReasonLabel("already_known", "already known", "已了解"),
    ReasonLabel("unclear", "unclear description", "描述不清"),
    ReasonLabel("not_relevant", "not relevant", "不相关"),
    ReasonLabel("other", "other", "其他"),
)
REASON_CODES: tuple[str, ...] = get_args(Reason)
assert REASON_CODES == tuple(r.code for r in REASONS)


def validate_event(*, action: str, reason: str | None, amount: float | None) -> None:
    """The rules the schema cannot say alone: a known action and reason; an amount only on a deal."""
    if action not in ACTIONS:
        raise invalid("action", f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}", "enum")
    if reason is not None and reason not in REASON_CODES:
        raise invalid(
            "reason", f"unknown reason {reason!r}; expected one of {', '.join(REASON_CODES)}", "enum"
        )
    if amount is not None:
        if action != "deal":
            raise invalid("amount", "an amount is only recorded with action 'deal'")
        if amount < 0:
            raise invalid("amount", "must be zero or more (CNY)")


def record_feedback(
    session: Session,
    *,
    caller: Caller,
    request_id: str,
    resource_id: int,
    action: str,
    reason: str | None = None,
    amount: float | None = None,
    need_id: int | None = None,
    idempotency_key: str | None = None,
) -> Feedback:
    """Validate and add one feedback event (flushed, not committed)."""
    validate_event(action=action, reason=reason, amount=amount)
    resource = session.get(Resource, resource_id) if 0 < resource_id < 2**63 else None
    if resource is None or (resource.tenant_id != caller.tenant and resource.visibility != "public"):
        raise NotFound(f"no resource with id {resource_id}")
    if need_id is not None:
        need = session.get(Need, need_id) if 0 < need_id < 2**63 else None
        if need is None or need.tenant_id != caller.tenant:
            raise NotFound(f"no need with id {need_id}")
    shown = session.exec(
        select(Impression)
        .where(
            Impression.tenant_id == caller.tenant,
            Impression.request_id == request_id,
            Impression.resource_id == resource_id,
        )
        .order_by(Impression.id)
    ).first()
    if shown is None:
        raise invalid(
            "request_id",
            f"resource {resource_id} was never shown to you under request {request_id!r}; "
            "feedback refers to a served match (the request_id of a /v1/match response)",
            "never_shown",
        )
    if need_id is not None and shown.need_id is not None and shown.need_id != need_id:
        raise invalid("need_id", f"request {request_id!r} was served for need {shown.need_id}, not {need_id}")
    row = Feedback(
        tenant_id=caller.tenant,
        request_id=request_id,
        need_id=shown.need_id if need_id is None else need_id,
        enterprise_id=shown.enterprise_id,
        resource_id=resource_id,
        action=action,
        reason=reason,
        amount=amount,
        position=shown.position,
        idempotency_key=idempotency_key,
    )
    session.add(row)
    session.flush()
    return row


def record_link_feedback(
    session: Session,
    *,
    tenant: str,
    enterprise_id: int,
    resource_id: int,
    action: str,
    reason: str | None = None,
) -> Feedback:
    """Feedback an enterprise gives from a digest's signed link (no key, no served list): recorded in the
    enterprise's tenant under the request id `digest-<enterprise id>`, once per resource and action (a second
    click returns the first row). Committed."""
    validate_event(action=action, reason=reason, amount=None)
    key = f"digest:{enterprise_id}:{resource_id}:{action}"
    found = session.exec(
        select(Feedback).where(Feedback.tenant_id == tenant, Feedback.idempotency_key == key)
    ).first()
    if found is not None:
        return found
    row = Feedback(
        tenant_id=tenant,
        request_id=f"digest-{enterprise_id}",
        enterprise_id=enterprise_id,
        resource_id=resource_id,
        action=action,
        reason=reason,
        idempotency_key=key,
    )
    session.add(row)
    session.commit()
    return row
