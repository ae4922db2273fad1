"""Idempotency-Key for creates: a retry with the same key and body gets the stored response, not a second record.

A key is scoped by tenant, method and path. The key is claimed by inserting its record in the same transaction
as the record it creates, so the unique constraint settles concurrent duplicates: the loser waits for the
winner's commit, rolls back and replays the winner's response."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, delete, select

from matcher.domain.tables import IdempotencyRecord
from matcher.errors import Conflict, ValidationFailed

_CLAIMED = "parkmatch.idempotency_claim"
IN_PROGRESS = 0  # status_code of a claim whose response is not stored yet (never visible after commit)


@dataclass(frozen=True)
class IdempotencyScope:
    tenant: str
    key: str
    method: str
    path: str
    body_hash: str


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: dict[str, Any]


def fingerprint(body: bytes) -> str:
    """SHA-256 of the body; JSON bodies are canonicalised first so whitespace and key order do not matter."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        data = canonical.encode("utf-8")
    except (ValueError, UnicodeDecodeError):
        data = body
    return hashlib.sha256(data).hexdigest()


def _find(session: Session, scope: IdempotencyScope) -> IdempotencyRecord | None:
    return session.exec(
        select(IdempotencyRecord).where(
            IdempotencyRecord.tenant_id == scope.tenant,
            IdempotencyRecord.key == scope.key,
            IdempotencyRecord.method == scope.method,
            IdempotencyRecord.path == scope.path,
        )
    ).first()


def _replay(record: IdempotencyRecord, scope: IdempotencyScope) -> Replay:
    if record.body_hash != scope.body_hash:
        raise ValidationFailed(
            "Idempotency-Key reused with a different body; use a new key for a different request",
            errors=[
                {"field": "Idempotency-Key", "message": "reused with a different body", "type": "idempotency"}
            ],
        )
    if record.status_code == IN_PROGRESS:
        raise Conflict("a request with this Idempotency-Key is still in progress; retry shortly")
    return Replay(status_code=record.status_code, body=dict(record.response))


def begin(session: Session, scope: IdempotencyScope) -> Replay | None:
    """The stored response to replay, or None after claiming the key for this transaction.

    Call it before any other write of the transaction: losing the claim to a concurrent request rolls the
    session back. Raises ValidationFailed when the key was used with a different body."""
    found = _find(session, scope)
    if found is not None:
        return _replay(found, scope)
    record = IdempotencyRecord(
        tenant_id=scope.tenant,
        key=scope.key,
        method=scope.method,
        path=scope.path,
        body_hash=scope.body_hash,
        status_code=IN_PROGRESS,
        response={},
    )
    session.add(record)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        found = _find(session, scope)
        if found is None:  # the other request rolled back after all: nothing to replay, let the client retry
            raise Conflict("a concurrent request with this Idempotency-Key failed; retry") from None
        return _replay(found, scope)
    session.info[_CLAIMED] = record
    return None


def complete(
    session: Session, scope: IdempotencyScope, *, status_code: int, response: dict[str, Any]
) -> None:
    """Store the response under the claimed key; it commits with the record it describes."""
    record = session.info.pop(_CLAIMED, None)
    if record is None or record.key != scope.key:
        record = _find(session, scope)
    if record is None:
        raise RuntimeError("complete() without begin() for this Idempotency-Key")
    record.status_code = status_code
    record.response = response
    session.add(record)
    session.flush()


def purge(session: Session, *, before: datetime) -> int:
    """Forget keys older than `before`; returns how many were removed."""
    result = session.exec(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < before))
    return int(result.rowcount or 0)
