"""Sign-in sessions: an opaque token in the browser's cookie (only its SHA-256 is stored), an idle and an
absolute expiry, a CSRF token per session, and sign-out."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from matcher.accounts.tables import UserAccount, UserSession
from matcher.domain.tables import as_utc, utcnow
from matcher.settings import Settings
from matcher.store.keys import Caller

TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Signed:
    """A live session: the person, its caller for the permission matrix, and the session's CSRF token."""

    user: UserAccount
    session_id: int
    csrf: str

    @property
    def caller(self) -> Caller:
        return Caller(tenant=self.user.tenant_id, role=self.user.role, user_id=self.user.id)


def open_session(session: Session, settings: Settings, user: UserAccount) -> tuple[str, UserSession]:
    """A new session for `user`; the token (for the cookie) is returned once. Committed."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = UserSession(
        token_hash=_hash(token),
        user_id=user.id,
        tenant_id=user.tenant_id,
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_max_hours),
    )
    session.add(row)
    session.commit()
    return token, row


def resolve(
    session: Session, settings: Settings, token: str | None, *, now: datetime | None = None
) -> tuple[Signed | None, str | None]:
    """(the live session, None), or (None, why): 'none' without a token or for an unknown one, 'expired' for one
    that timed out or was ended. A live session's last use is recorded."""
    if not token or len(token) > 200:
        return None, "none"
    row = session.exec(select(UserSession).where(UserSession.token_hash == _hash(token))).first()
    if row is None:
        return None, "none"
    now = now or utcnow()
    idle_end = as_utc(row.last_seen_at) + timedelta(minutes=settings.session_idle_minutes)
    if row.ended_at is not None or now >= as_utc(row.expires_at) or now >= idle_end:
        return None, "expired"
    user = session.get(UserAccount, row.user_id)
    if user is None or not user.active or user.tenant_id != row.tenant_id:
        return None, "expired"
    if now - as_utc(row.last_seen_at) >= TOUCH_EVERY:
        row.last_seen_at = now
        session.add(row)
        session.commit()
    return Signed(user=user, session_id=row.id, csrf=row.csrf), None


def end_session(session: Session, token: str | None) -> None:
    """Sign out: the session's token is void from now on (committed)."""
    if not token or len(token) > 200:
        return
    row = session.exec(select(UserSession).where(UserSession.token_hash == _hash(token))).first()
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        session.add(row)
        session.commit()
