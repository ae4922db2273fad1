"""Accounts and their sign-in sessions (persistence only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from matcher.domain.tables import utcnow


class UserAccount(SQLModel, table=True):
    """A person of one tenant. The email is unique within the tenant; the password is stored as an Argon2id hash."""

    __tablename__ = "user_account"
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: str = Field(foreign_key="tenant.id", index=True, max_length=64)
    email: str = Field(index=True, max_length=254)  # stored lower-cased
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=16)  # admin | officer
    password_hash: str = Field(max_length=256)
    active: bool = True
    failed_logins: int = 0  # wrong passwords since the last successful sign-in
    locked_until: datetime | None = None
    last_login_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class UserSession(SQLModel, table=True):
    """One signed-in browser. Only a SHA-256 of the cookie's token is stored; `csrf` is the token every form
    of the session carries."""

    __tablename__ = "user_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    tenant_id: str = Field(max_length=64)
    csrf: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime  # the absolute end; the idle end is last_seen_at + the idle timeout
    ended_at: datetime | None = None
