"""Change notifications from the store to whatever keeps derived state (indexes, standing queries).

Only the store layer announces changes. Listeners are called after the transaction commits; a listener that
fails never undoes a write, because the store is the source of truth and derived state is reconciled from it at
start-up."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from sqlalchemy import event
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session

from matcher.domain.tables import Enterprise, Need, Resource

logger = logging.getLogger(__name__)


class ChangeListener(Protocol):
    def resources_changed(self, resources: Sequence[Resource]) -> None: ...

    def resources_removed(self, ids: Sequence[int]) -> None: ...

    def demand_changed(self, needs: Sequence[Need], enterprises: Sequence[Enterprise]) -> None: ...

    def demand_removed(self, need_ids: Sequence[int], enterprise_ids: Sequence[int]) -> None: ...


class ChangeHub:
    """Fans committed changes out to listeners; one failing listener does not stop the others."""

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    def subscribe(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def _emit(self, method: str, *args: object) -> None:
        for listener in self._listeners:
            fn = getattr(listener, method, None)
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - derived state is repaired at start-up
                logger.exception("change listener %r failed in %s", listener, method)

    def resources_changed(self, resources: Sequence[Resource]) -> None:
        if resources:
            self._emit("resources_changed", list(resources))

    def resources_removed(self, ids: Sequence[int]) -> None:
        if ids:
            self._emit("resources_removed", list(ids))

    def demand_changed(self, needs: Sequence[Need] = (), enterprises: Sequence[Enterprise] = ()) -> None:
        if needs or enterprises:
            self._emit("demand_changed", list(needs), list(enterprises))

    def demand_removed(self, need_ids: Sequence[int] = (), enterprise_ids: Sequence[int] = ()) -> None:
        if need_ids or enterprise_ids:
            self._emit("demand_removed", list(need_ids), list(enterprise_ids))


# ---------------------------------------------------------------- announced after commit

_PENDING = "parkmatch.pending_changes"


def notify_after_commit(session: Session, hub: ChangeHub | None, method: str, *args: object) -> None:
    """Queue a hub call for when this session's transaction commits; dropped if it rolls back."""
    if hub is None:
        return
    if _PENDING not in session.info:
        session.info[_PENDING] = []
        event.listen(session, "after_commit", _emit_pending)
        event.listen(session, "after_transaction_end", _drop_pending)
    session.info[_PENDING].append((hub, method, args))


def _emit_pending(session: Session) -> None:
    pending, session.info[_PENDING] = session.info[_PENDING], []
    for hub, method, args in pending:
        getattr(hub, method)(*args)


def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info[_PENDING] = []
