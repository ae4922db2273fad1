"""API keys bound to a tenant and a role (only a SHA-256 of each key is stored), and their management by an admin."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlmodel import Session, select

from matcher.domain.permissions import ROLES, authorize
from matcher.domain.tables import ApiKey, Tenant, utcnow
from matcher.errors import NotFound, invalid
from matcher.store import audit
from matcher.store.db import valid_id

KEY_PREFIX = "pm"


@dataclass(frozen=True)
class Caller:
    """Who is asking: every read and write is scoped by this."""

    tenant: str
    role: str
    key_id: int | None = None  # None for the command line, which acts as its tenant's admin
    user_id: int | None = None  # a person signed in to the workbench (matcher/accounts), instead of a key


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def ensure_tenant(session: Session, tenant: str, name: str = "") -> Tenant:
    row = session.get(Tenant, tenant)
    if row is None:
        row = Tenant(id=tenant, name=name or tenant)
        session.add(row)
        session.flush()
    return row


def create_key(
    session: Session, *, tenant: str, role: str, name: str = "", actor: Caller | audit.Actor | None = None
) -> tuple[ApiKey, str]:
    """Create a key; the plaintext is returned once and never stored. `actor` is who asks (audited; by default
    the operator of this process, e.g. `matcher keys create`)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    ensure_tenant(session, tenant)
    prefix = secrets.token_hex(6)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(tenant_id=tenant, role=role, prefix=prefix, key_hash=_hash(plaintext), name=name)
    session.add(row)
    session.flush()
    summary = {"role": role, "prefix": prefix}
    who = actor or audit.Actor(tenant=tenant, name=audit.OPERATOR)
    audit.record(session, who, "key.create", record_type="api_key", record_id=row.id, summary=summary)
    return row, plaintext


def verify_key(session: Session, plaintext: str) -> Caller | None:
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    row = session.exec(select(ApiKey).where(ApiKey.prefix == parts[1])).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash, _hash(plaintext)):
        return None
    return Caller(tenant=row.tenant_id, role=row.role, key_id=row.id)


def revoke_key(session: Session, key_id: int, *, tenant: str | None = None) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or (tenant is not None and row.tenant_id != tenant):
        return False
    row.revoked_at = utcnow()
    session.add(row)
    who = audit.Actor(tenant=row.tenant_id, name=audit.OPERATOR)
    audit.record(
        session, who, "key.revoke", record_type="api_key", record_id=row.id, summary={"role": row.role}
    )
    return True


# ---------------------------------------------------------------- managed by an admin, own tenant only


def create_api_key(
    session: Session, *, caller: Caller, role: str, name: str = "", commit: bool = True
) -> tuple[ApiKey, str]:
    """A new key in the caller's own tenant; the plaintext is returned once and never stored."""
    authorize(caller, "create", "key", owner_tenant=caller.tenant)
    if role not in ROLES:
        raise invalid("role", f"expected one of {', '.join(ROLES)}")
    row, plaintext = create_key(session, tenant=caller.tenant, role=role, name=name, actor=caller)
    if commit:
        session.commit()
    return row, plaintext


def list_api_keys(session: Session, *, caller: Caller) -> list[ApiKey]:
    authorize(caller, "read", "key", owner_tenant=caller.tenant)
    return list(session.exec(select(ApiKey).where(ApiKey.tenant_id == caller.tenant).order_by(ApiKey.id)))


def revoke_api_key(session: Session, *, caller: Caller, id: int, commit: bool = True) -> ApiKey:
    """Revoke a key of the caller's tenant (revoking twice keeps the first time); another tenant's is not found."""
    authorize(caller, "delete", "key", owner_tenant=None)
    row = session.get(ApiKey, id) if valid_id(id) else None
    if row is None:
        raise NotFound(f"no API key with id {id}")
    authorize(caller, "delete", "key", owner_tenant=row.tenant_id, record=f"API key with id {id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        summary = {"role": row.role}
        audit.record(session, caller, "key.revoke", record_type="api_key", record_id=row.id, summary=summary)
        session.flush()
    if commit:
        session.commit()
    return row
