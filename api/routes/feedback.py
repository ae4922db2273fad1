"""Outcome feedback on served matches (POST /v1/feedback) and the list of rejection reasons."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictFloat

from api.deps import CallerDep, SessionDep
from api.idempotency import IdempotencyDep, create_once
from matcher.domain.schemas import Id
from matcher.outcomes.feedback import REASONS, Action, Reason, record_feedback

router = APIRouter(tags=["feedback"])


# an amount goes with a deal only: either the action is "deal" or the amount is null (or left out)
_AMOUNT_RULE = {
    "anyOf": [{"properties": {"action": {"const": "deal"}}}, {"properties": {"amount": {"type": "null"}}}]
}


class FeedbackCreate(BaseModel):
    """Feedback on a match served to you: `request_id` and `resource_id` name one item of a list you were
    served (422 naming request_id otherwise), `need_id` (if given) the need it was served for."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_AMOUNT_RULE)
    request_id: str = Field(
        min_length=1,
        max_length=64,
        description="the request_id of a match list served to you that listed `resource_id`",
    )
    resource_id: Id = Field(description="the matched resource the event is about")
    action: Action
    reason: Reason | None = Field(
        default=None, description="why (mostly with 'rejected'); see /v1/feedback/reasons"
    )
    amount: StrictFloat | None = Field(default=None, ge=0, description="CNY, with action 'deal' only")
    need_id: Id | None = Field(default=None, description="the need the list was served for")


class FeedbackPublic(BaseModel):
    id: int
    request_id: str | None
    resource_id: int
    need_id: int | None
    enterprise_id: int | None
    action: str
    reason: str | None
    amount: float | None
    position: int | None
    created_at: datetime


class ReasonPublic(BaseModel):
    code: str
    en: str
    zh: str


class ReasonsPublic(BaseModel):
    data: list[ReasonPublic]
    count: int


@router.post("/feedback", response_model=FeedbackPublic, status_code=201)
def create_feedback(
    body: FeedbackCreate,
    session: SessionDep,
    caller: CallerDep,
    scope: IdempotencyDep,
):
    """Record what happened to a served match: clicked, contacted, accepted, rejected (with a reason), deal."""

    def create() -> FeedbackPublic:
        row = record_feedback(
            session,
            caller=caller,
            request_id=body.request_id,
            resource_id=body.resource_id,
            action=body.action,
            reason=body.reason,
            amount=body.amount,
            need_id=body.need_id,
            idempotency_key=scope.key if scope is not None else None,
        )
        return FeedbackPublic.model_validate(row, from_attributes=True)

    return create_once(session, scope, create)


@router.get("/feedback/reasons", response_model=ReasonsPublic)
def feedback_reasons(caller: CallerDep) -> ReasonsPublic:
    """The fixed rejection reasons, with English and Chinese labels."""
    data = [ReasonPublic(code=r.code, en=r.en, zh=r.zh) for r in REASONS]
    return ReasonsPublic(data=data, count=len(data))
