"""Password hashing with Argon2id (argon2-cffi's current parameters) and the password rule."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from matcher.errors import invalid

MIN_LENGTH = 8
MAX_LENGTH = 256


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # Argon2id, RFC 9106's low-memory profile


def check_password_rule(password: str) -> None:
    """A ValidationFailed naming the field when the password is too short, too long or blank."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise invalid("password", f"at least {MIN_LENGTH} characters (至少 {MIN_LENGTH} 个字符)", "too_short")
    if len(password) > MAX_LENGTH:
        raise invalid("password", f"at most {MAX_LENGTH} characters", "too_long")
    if not password.strip():
        raise invalid("password", "must not be only spaces", "blank")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with older parameters: re-hashed at the next successful sign-in."""
    try:
        return _hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


# verified against when no account has the email, so that an unknown email costs as much time as a known one
_DUMMY = None


def burn_time(password: str) -> None:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = hash_password("not a password of anyone")
    verify_password(_DUMMY, password)
