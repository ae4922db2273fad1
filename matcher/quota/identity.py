"""Who pays for a request: API keys verified once and remembered for a while, so the limiter rarely reads the store."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlmodel import Session

from matcher.accounts import sessions
from matcher.settings import Settings
from matcher.store.keys import verify_key


@dataclass(frozen=True)
class KeyIdentity:
    tenant: str
    key_id: int


class VerifiedKeys:
    """SHA-256 of a presented key -> its identity, or None for a key that does not verify, for `ttl_s` seconds
    (a key revoked elsewhere is charged to its own bucket at most that long; the route still refuses it)."""

    def __init__(
        self,
        db: Engine,
        *,
        ttl_s: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[KeyIdentity | None, float]] = OrderedDict()

    @staticmethod
    def digest(plaintext: str) -> str:
        return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()

    def cached(self, digest: str) -> tuple[bool, KeyIdentity | None]:
        """(known, identity) without touching the store."""
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None or entry[1] <= self._clock():
                return False, None
            self._entries.move_to_end(digest)
            return True, entry[0]

    def resolve(self, plaintext: str) -> KeyIdentity | None:
        """Verify against the store and remember the answer (blocking: call it off the event loop)."""
        with Session(self.db) as session:
            caller = verify_key(session, plaintext)
        identity = (
            None if caller is None or caller.key_id is None else KeyIdentity(caller.tenant, caller.key_id)
        )
        self.remember(self.digest(plaintext), identity)
        return identity

    def remember(self, digest: str, identity: KeyIdentity | None) -> None:
        with self._lock:
            self._entries[digest] = (identity, self._clock() + self.ttl_s)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, key_id: int) -> None:
        """A key revoked through this process stops being recognised at once."""
        with self._lock:
            for digest in [d for d, (ident, _) in self._entries.items() if ident and ident.key_id == key_id]:
                del self._entries[digest]


class VerifiedSessions:
    """The same for the workbench's session cookies: SHA-256 of a session token -> (tenant, account id), or None
    for a token that is unknown or ended, for `ttl_s` seconds."""

    def __init__(self, db: Engine, settings: Settings, *, ttl_s: float, max_entries: int = 10_000) -> None:
        self.db = db
        self.settings = settings
        self._cache = VerifiedKeys(db, ttl_s=ttl_s, max_entries=max_entries)

    def cached(self, token: str) -> tuple[bool, KeyIdentity | None]:
        return self._cache.cached(VerifiedKeys.digest(token))

    def resolve(self, token: str) -> KeyIdentity | None:
        """Check the session in the store and remember the answer (blocking: call it off the event loop)."""
        with Session(self.db) as session:
            signed, _ = sessions.resolve(session, self.settings, token)
        identity = None if signed is None else KeyIdentity(signed.user.tenant_id, int(signed.user.id))
        self._cache.remember(VerifiedKeys.digest(token), identity)
        return identity
