"""The Idempotency-Key header as a dependency, and the create-once helper the POST routes share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CallerDep
from matcher.store import idempotency
from matcher.store.idempotency import IdempotencyScope

REPLAYED_HEADER = "Idempotent-Replayed"


async def idempotency_scope(
    request: Request,
    caller: CallerDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Retry-safe creates: the same key and body replay the first response; "
            "the same key with another body is refused (422).",
        ),
    ] = None,
) -> IdempotencyScope | None:
    if not idempotency_key or not idempotency_key.strip():
        return None
    body = await request.body()  # already read and cached by the body parser
    return IdempotencyScope(
        tenant=caller.tenant,
        key=idempotency_key.strip(),
        method=request.method,
        path=request.url.path,
        body_hash=idempotency.fingerprint(body),
    )


IdempotencyDep = Annotated[IdempotencyScope | None, Depends(idempotency_scope)]


def create_once(
    session: Session,
    scope: IdempotencyScope | None,
    create: Callable[[], BaseModel],
    *,
    status_code: int = 201,
) -> BaseModel | JSONResponse:
    """Run `create` (which writes without committing) and commit, storing its response under the key if any."""
    if scope is None:
        out = create()
        session.commit()
        return out
    replay = idempotency.begin(session, scope)
    if replay is not None:
        return JSONResponse(replay.body, status_code=replay.status_code, headers={REPLAYED_HEADER: "true"})
    out = create()
    idempotency.complete(session, scope, status_code=status_code, response=out.model_dump(mode="json"))
    session.commit()
    return out
