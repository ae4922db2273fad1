"""Annotated dependency aliases: the database session, the app state, the authenticated caller and its permissions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.state import AppState
from matcher.domain.permissions import authorize
from matcher.errors import ServiceUnavailable, Unauthorized
from matcher.matching.engine import MatchEngine
from matcher.store.keys import Caller, verify_key

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


def get_state(request: Request) -> AppState:
    return request.app.state.app_state


StateDep = Annotated[AppState, Depends(get_state)]


FEED_SESSIONS = "feed_sessions"  # request.state: the sessions a request used (api/feed.py reads their seq)


def get_session(state: StateDep, request: Request) -> Iterator[Session]:
    with Session(state.db, expire_on_commit=False) as session:
        sessions = getattr(request.state, FEED_SESSIONS, None)
        if sessions is None:
            sessions = []
            setattr(request.state, FEED_SESSIONS, sessions)
        sessions.append(session)  # the response says the seq of what its commit appended (X-Matcher-Seq)
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_caller(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    with Session(state.db) as session:
        caller = verify_key(session, credentials.credentials)
    if caller is None:
        raise Unauthorized("invalid or revoked API key")
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def permit(action: str, record_type: str) -> Any:
    """A dependency giving the caller when the permission matrix lets its role `action` `record_type` records of
    its own tenant; a 403 problem otherwise. Routes whose record is known only after a lookup leave it to the store."""

    def _check(caller: CallerDep) -> Caller:
        authorize(caller, action, record_type, owner_tenant=caller.tenant)
        return caller

    return Depends(_check)


def get_matcher(state: StateDep) -> MatchEngine:
    if state.matcher is None:
        raise ServiceUnavailable("the matching indexes are still loading; retry shortly")
    return state.matcher
