"""Accounts of people: create (by an admin or the command line), list, change, and sign-in with lockout.

An account belongs to one tenant and has the role admin or officer of the permission matrix. Sign-in is by
email and password; an email that has accounts in several tenants also needs the tenant. After
`login_max_failures` wrong passwords in a row an account is locked for `login_lockout_minutes`; the messages of
a wrong email and a wrong password are the same, and an unknown email costs a hash verification too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from matcher.accounts import passwords
from matcher.accounts.tables import UserAccount, UserSession
from matcher.domain.permissions import PERSON_ROLES, authorize
from matcher.domain.tables import as_utc, utcnow
from matcher.errors import Conflict, NotFound, invalid
from matcher.settings import Settings
from matcher.store import audit
from matcher.store.db import valid_id
from matcher.store.keys import Caller, ensure_tenant

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")
_TENANT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not _EMAIL.match(email):
        raise invalid("email", "not an email address (邮箱格式不正确)", "value_error")
    return email


def check_role(role: str) -> str:
    if role not in PERSON_ROLES:
        raise invalid("role", f"expected one of {', '.join(PERSON_ROLES)}", "enum")
    return role


def check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant or ""):
        raise invalid("tenant", "lower-case letters, digits, '-' and '_', at most 64 characters", "pattern")
    return tenant


def create_user(
    session: Session,
    *,
    tenant: str,
    role: str,
    email: str,
    password: str,
    name: str = "",
    actor: Caller | audit.Actor | None = None,
    commit: bool = True,
) -> UserAccount:
    """A new account in `tenant`. `actor` is who asks: an admin Caller of that tenant, or (None) the operator at
    the command line. The password is stored hashed only."""
    if isinstance(actor, Caller):
        authorize(actor, "create", "user", owner_tenant=tenant)
    check_tenant(tenant)
    check_role(role)
    email = normalize_email(email)
    passwords.check_password_rule(password)
    name = (name or "").strip()[:200]
    if "\r" in name or "\n" in name or "\x00" in name:
        raise invalid("name", "must be a single line")
    taken = session.exec(
        select(UserAccount.id).where(UserAccount.tenant_id == tenant, UserAccount.email == email)
    ).first()
    if taken is not None:
        raise Conflict(
            f"an account with the email {email} already exists in {tenant}",
            errors=[{"field": "email", "message": "already used", "type": "conflict"}],
        )
    ensure_tenant(session, tenant)
    row = UserAccount(
        tenant_id=tenant, email=email, name=name, role=role, password_hash=passwords.hash_password(password)
    )
    session.add(row)
    session.flush()
    who = actor or audit.Actor(tenant=tenant, name=audit.OPERATOR)
    audit.record(session, who, "user.create", record_type="user", record_id=row.id, summary={"role": role})
    if commit:
        session.commit()
    return row


def list_users(session: Session, *, caller: Caller) -> list[UserAccount]:
    authorize(caller, "read", "user", owner_tenant=caller.tenant)
    stmt = select(UserAccount).where(UserAccount.tenant_id == caller.tenant).order_by(UserAccount.id)
    return list(session.exec(stmt))


def get_user(session: Session, *, caller: Caller, id: int) -> UserAccount:
    authorize(caller, "read", "user", owner_tenant=None)
    row = session.get(UserAccount, id) if valid_id(id) else None
    if row is None or row.tenant_id != caller.tenant:
        raise NotFound(f"no account with id {id}")
    return row


def update_user(
    session: Session,
    *,
    caller: Caller,
    id: int,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
    unlock: bool = False,
) -> UserAccount:
    """An admin changes an account of its tenant: role, active, a new password, or lifts a lock. Deactivating an
    account or changing its password ends its sessions. An admin cannot demote or deactivate itself."""
    authorize(caller, "update", "user", owner_tenant=None)
    row = get_user(session, caller=caller, id=id)
    authorize(caller, "update", "user", owner_tenant=row.tenant_id)
    own = caller.user_id == row.id
    fields: list[str] = []
    if role is not None and role != row.role:
        if own:
            raise invalid("role", "you cannot change your own role")
        row.role = check_role(role)
        fields.append("role")
    if active is not None and active != row.active:
        if own and not active:
            raise invalid("active", "you cannot deactivate your own account")
        row.active = active
        fields.append("active")
    if password:
        passwords.check_password_rule(password)
        row.password_hash = passwords.hash_password(password)
        fields.append("password")
    if unlock and (row.locked_until is not None or row.failed_logins):
        row.locked_until, row.failed_logins = None, 0
        fields.append("lock")
    if fields:
        row.updated_at = utcnow()
        session.add(row)
        if "active" in fields or "password" in fields:
            end_sessions(session, row.id)
        summary = {"fields": sorted(fields)}
        audit.record(session, caller, "user.update", record_type="user", record_id=row.id, summary=summary)
    session.commit()
    return row


def end_sessions(session: Session, user_id: int) -> None:
    now = utcnow()
    for s in session.exec(
        select(UserSession).where(UserSession.user_id == user_id, col(UserSession.ended_at).is_(None))
    ):
        s.ended_at = now
        session.add(s)


# ---------------------------------------------------------------- signing in


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt came to: `user` when it succeeded, else `reason` (bad, locked, choose_tenant)."""

    user: UserAccount | None
    reason: str = "ok"
    locked_until: datetime | None = None


def _candidates(session: Session, email: str, tenant: str | None) -> list[UserAccount]:
    stmt = select(UserAccount).where(UserAccount.email == email)
    if tenant:
        stmt = stmt.where(UserAccount.tenant_id == tenant)
    return list(session.exec(stmt.order_by(UserAccount.id)))


def authenticate(
    session: Session,
    settings: Settings,
    *,
    email: str,
    password: str,
    tenant: str | None = None,
    now: datetime | None = None,
) -> SignIn:
    """Check a password; count failures and lock; committed. Never says whether the email exists."""
    now = now or utcnow()
    try:
        email = normalize_email(email)
    except Exception:  # noqa: BLE001 - a malformed email is just a wrong one
        passwords.burn_time(password or "")
        return SignIn(None, "bad")
    found = _candidates(session, email, (tenant or "").strip() or None)
    if len(found) > 1:
        passwords.burn_time(password or "")
        return SignIn(None, "choose_tenant")
    if not found or not found[0].active:
        passwords.burn_time(password or "")
        return SignIn(None, "bad")
    user = found[0]
    locked = as_utc(user.locked_until)
    if locked is not None and locked > now:
        return SignIn(None, "locked", locked)
    if not passwords.verify_password(user.password_hash, password or ""):
        user.failed_logins += 1
        reason, until = "bad", None
        if user.failed_logins >= settings.login_max_failures:
            until = now + timedelta(minutes=settings.login_lockout_minutes)
            user.locked_until, user.failed_logins, reason = until, 0, "locked"
            who = audit.Actor(tenant=user.tenant_id, name="sign-in")
            audit.record(session, who, "user.lock", record_type="user", record_id=user.id)
        session.add(user)
        session.commit()
        return SignIn(None, reason, until)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    session.add(user)
    session.commit()
    return SignIn(user)
