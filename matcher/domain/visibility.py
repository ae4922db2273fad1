"""Who may see a record, decided here and nowhere else: a record is visible to its own tenant, and to every
tenant when it is public; only its own tenant may change it. The store's queries, the match pipeline's filter
catalogs (which hold `is_public` per row) and every route read these."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import or_

PUBLIC = "public"


class Owned(Protocol):
    tenant_id: str
    visibility: str


def is_public(visibility: str | None) -> bool:
    return visibility == PUBLIC


def visible_to(row: Owned, tenant: str) -> bool:
    return row.tenant_id == tenant or is_public(row.visibility)


def writable_by(row: Owned, tenant: str) -> bool:
    return row.tenant_id == tenant


def visible_clause(model: Any, tenant: str) -> Any:
    """The SQL condition of `visible_to` for a table with `tenant_id` and `visibility` columns."""
    return or_(model.tenant_id == tenant, model.visibility == PUBLIC)
