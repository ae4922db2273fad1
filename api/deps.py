"""Annotated dependency aliases: the database session, the app state and the authenticated caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.state import AppState
from matcher.errors import Forbidden, ServiceUnavailable, Unauthorized
from matcher.matching.engine import MatchEngine
from matcher.store.keys import Caller, verify_key

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


def get_state(request: Request) -> AppState:
    return request.app.state.app_state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.db, expire_on_commit=False) as session:
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


def require_roles(*roles: str):
    def _check(caller: CallerDep) -> Caller:
        if caller.role not in roles:
            raise Forbidden(f"this action needs one of the roles: {', '.join(roles)} (you are {caller.role})")
        return caller

    return Depends(_check)


AdminDep = Annotated[Caller, require_roles("admin")]
WriterDep = Annotated[Caller, require_roles("admin", "officer", "platform")]
OfficerDep = Annotated[Caller, require_roles("admin", "officer")]


def get_matcher(state: StateDep) -> MatchEngine:
    if state.matcher is None:
        raise ServiceUnavailable("the matching indexes are still loading; retry shortly")
    return state.matcher
