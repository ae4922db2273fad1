"""Accounts, for a tenant's admins: who may sign in, as what; create an account, change a role, deactivate,
unlock, set a new password. The rules are matcher/accounts/users.py's, the permissions the matrix's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from api.deps import StateDep
from api.ui.auth import CsrfDep, SignedDep
from api.ui.render import page
from matcher.accounts import users
from matcher.domain.permissions import PERSON_ROLES
from matcher.domain.tables import as_utc, utcnow
from matcher.errors import MatcherError

router = APIRouter()
Short = Annotated[str, Form(max_length=300)]


def _page(
    request: Request,
    state,
    signed,
    *,
    error: str | None = None,
    notice: str | None = None,
    typed=None,
    status=200,
) -> Response:
    with Session(state.db) as session:
        rows = users.list_users(session, caller=signed.caller)
    now = utcnow()
    accounts = [{"u": u, "locked": u.locked_until is not None and as_utc(u.locked_until) > now} for u in rows]
    ctx = {
        "accounts": accounts,
        "roles": PERSON_ROLES,
        "error": error,
        "notice": notice,
        "typed": typed or {},
    }
    return page(request, "users.html", ctx, status=status)


@router.get("/users")
def users_page(
    request: Request, state: StateDep, signed: SignedDep, created: int = 0, updated: int = 0
) -> Response:
    from api.ui.i18n import translate
    from api.ui.render import language

    notice = (
        translate(language(request), "users.created")
        if created
        else (translate(language(request), "rec.saved") if updated else None)
    )
    return _page(request, state, signed, notice=notice)


@router.post("/users")
def user_create(
    request: Request,
    state: StateDep,
    signed: CsrfDep,
    email: Short = "",
    name: Short = "",
    role: Annotated[str, Form(max_length=20)] = "officer",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        with Session(state.db) as session:
            users.create_user(
                session,
                tenant=signed.caller.tenant,
                role=role,
                email=email,
                password=password,
                name=name,
                actor=signed.caller,
            )
    except MatcherError as exc:
        if exc.status not in (409, 422):
            raise
        typed = {"email": email, "name": name, "role": role}
        return _page(request, state, signed, error=exc.detail, typed=typed, status=exc.status)
    return RedirectResponse("/ui/users?created=1", status_code=303)


@router.post("/users/{user_id}")
def user_update(
    request: Request,
    state: StateDep,
    signed: CsrfDep,
    user_id: int,
    op: Annotated[str, Form(max_length=20)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    changes: dict = {}
    if op == "role":
        changes["role"] = role
    elif op in ("activate", "deactivate"):
        changes["active"] = op == "activate"
    elif op == "unlock":
        changes["unlock"] = True
    elif op == "password":
        changes["password"] = password or " "  # an empty box is refused by the password rule
    try:
        with Session(state.db) as session:
            users.update_user(session, caller=signed.caller, id=user_id, **changes)
    except MatcherError as exc:
        if exc.status not in (409, 422):
            raise
        return _page(request, state, signed, error=exc.detail, status=exc.status)
    return RedirectResponse("/ui/users?updated=1", status_code=303)
