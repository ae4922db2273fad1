"""The route bodies that the enterprise, need and resource routers share, over each one's store functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from api.idempotency import create_once
from api.state import AppState
from matcher.store.feed import LAST_SEQ, append_now, record_seqs, written_seq
from matcher.store.idempotency import IdempotencyScope
from matcher.store.keys import Caller
from matcher.store.queries import MAX_LIMIT

# query parameters that every list route takes alike
IndustryQuery = Annotated[str | None, Query(max_length=300, description="taxonomy tag in either language")]
RegionQuery = Annotated[str | None, Query(max_length=300)]
# opaque to clients: only a `next_cursor` this API returned is valid, which the custom format says
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description="next_cursor of the previous page",
        json_schema_extra={"format": "parkmatch-cursor"},
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


@dataclass(frozen=True)
class EntityRoutes:
    """One entity's store functions (create_row ... count_rows), its public view and its page model."""

    create_row: Callable[..., Any]
    get_row: Callable[..., Any]
    update_row: Callable[..., Any]
    delete_row: Callable[..., Any]
    list_rows: Callable[..., tuple[list[Any], str | None]]
    count_rows: Callable[..., int]
    to_public: Callable[[Any, Caller], Any]
    page: type[BaseModel]
    record_type: str  # in the change feed: enterprise, need or resource

    def create(
        self, session: Session, caller: Caller, state: AppState, idem: IdempotencyScope | None, data: Any
    ) -> Any | JSONResponse:
        """Create under the caller's tenant, once per idempotency key."""

        def create() -> Any:
            row = self.create_row(session, caller=caller, data=data, hub=state.hub, commit=False)
            out = self.to_public(row, caller)
            out.seq = append_now(session)  # numbered before the commit: a replay says the same seq
            return out

        return create_once(session, idem, create)

    def list(
        self, session: Session, caller: Caller, cursor: str | None, limit: int, filters: dict[str, Any]
    ) -> Any:
        """One page of what the caller can see, with the count over all pages."""
        rows, next_cursor = self.list_rows(session, caller=caller, cursor=cursor, limit=limit, **filters)
        return self.page(
            data=self._with_seqs(session, [self.to_public(r, caller) for r in rows]),
            count=self.count_rows(session, caller=caller, **filters),
            next_cursor=next_cursor,
        )

    def get(self, session: Session, caller: Caller, id: int) -> Any:
        return self._with_seqs(
            session, [self.to_public(self.get_row(session, caller=caller, id=id), caller)]
        )[0]

    def _with_seqs(self, session: Session, views: list[Any]) -> list[Any]:
        """Each record's `seq`: that of its last write, as its write response said it."""
        seqs = record_seqs(session, self.record_type, [v.id for v in views])
        for view in views:
            view.seq = seqs.get(view.id)
        return views

    def update(self, session: Session, caller: Caller, state: AppState, id: int, data: Any) -> Any:
        out = self.to_public(self.update_row(session, caller=caller, id=id, data=data, hub=state.hub), caller)
        if session.info.get(LAST_SEQ) is None:  # nothing changed: the record's last write (else the head)
            self._with_seqs(session, [out])
            session.info[LAST_SEQ] = out.seq if out.seq is not None else written_seq(session)
        out.seq = session.info[LAST_SEQ]
        return out

    def delete(self, session: Session, caller: Caller, state: AppState, id: int) -> None:
        self.delete_row(session, caller=caller, id=id, hub=state.hub)
