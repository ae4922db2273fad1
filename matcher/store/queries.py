"""Filtered lists of the enterprises, needs and resources a caller can see, with counts and cursor pagination."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, cast, exists, false, func, or_
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlmodel import Session, select

from matcher.domain.regions import default_regions
from matcher.domain.tables import Enterprise, Need, Resource
from matcher.domain.taxonomy import default_taxonomy
from matcher.domain.visibility import visible_clause
from matcher.errors import invalid
from matcher.store.db import MAX_ID, valid_id
from matcher.store.keys import Caller
from matcher.store.rules import Row

MAX_LIMIT = 200

# the column `q` searches
_TEXT_COLUMN: dict[type[Row], Any] = {Resource: Resource.title, Enterprise: Enterprise.name, Need: Need.title}


def by_ids(session: Session, model: type[Row], ids: Sequence[int]) -> dict[int, Any]:
    """The rows of `model` with these ids, by id (ids no longer stored are absent). No visibility check: the
    caller passes ids it was allowed to see (e.g. a match's candidates)."""
    wanted = sorted({int(i) for i in ids if valid_id(int(i))})
    if not wanted:
        return {}
    return {r.id: r for r in session.exec(select(model).where(model.id.in_(wanted)))}


def encode_cursor(last_id: int) -> str:
    raw = json.dumps({"after": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid("cursor", "not a cursor returned by this API") from None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_ID:
        raise invalid("cursor", "not a cursor returned by this API")
    return after


def _page(
    session: Session, model: type[Row], conds: list[Any], cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    stmt = select(model).where(*conds)
    if cursor:
        stmt = stmt.where(model.id > decode_cursor(cursor))
    rows = list(session.exec(stmt.order_by(model.id).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def _count(session: Session, model: type[Row], conds: list[Any]) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(*conds)).one())


def _json_has_any(session: Session, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """The JSON list in `column` holds at least one of `values` (exact elements, on either store)."""
    if not values:
        return false()
    if session.get_bind().dialect.name == "postgresql":
        return cast(column, JSONB).has_any(array(list(values)))
    each = func.json_each(column).table_valued("value").alias()
    return exists().select_from(each).where(each.c.value.in_(list(values)))


def _industry_tags(industry: str) -> list[str]:
    """A filter tag with its descendants: 智能装备 also finds robotics."""
    tax = default_taxonomy()
    tags, _ = tax.normalize_tags([industry])
    if not tags:
        return []
    tag = tags[0]
    return [tag, *(t for t in tax.tags if tag in tax.ancestors(t))]


def _filters(
    session: Session,
    model: type[Row],
    caller: Caller,
    industry: str | None,
    region: str | None,
    visibility: str | None,
    q: str | None,
    **equal: str | None,
) -> list[Any]:
    """The rows the caller can see, narrowed by the filters given; each of `equal` names a column to match."""
    conds: list[Any] = [visible_clause(model, caller.tenant)]
    if industry and industry.strip():
        conds.append(_json_has_any(session, model.industries, _industry_tags(industry)))
    if region and region.strip():
        # 北京 also lists records in 海淀区 or 海淀园, in either language, and nationwide ones (domain/regions.py)
        names = [n.lower() for n in default_regions().names_passing(region)]
        conds.append(func.lower(model.region).in_(names))
    if visibility:
        conds.append(model.visibility == visibility)
    if q and q.replace("\x00", "").strip():
        conds.append(_TEXT_COLUMN[model].icontains(q.replace("\x00", "").strip(), autoescape=True))
    conds.extend(getattr(model, name) == value for name, value in equal.items() if value)
    return conds


# ---------------------------------------------------------------- resources


def _resource_filters(
    session: Session,
    caller: Caller,
    kind: str | None,
    industry: str | None,
    region: str | None,
    status: str | None,
    visibility: str | None,
    q: str | None,
) -> list[Any]:
    return _filters(session, Resource, caller, industry, region, visibility, q, kind=kind, status=status)


def list_resources(
    session: Session,
    *,
    caller: Caller,
    kind: str | None = None,
    industry: str | None = None,
    region: str | None = None,
    status: str | None = None,
    visibility: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Resource], str | None]:
    """One page of the resources the caller can see, oldest first; (rows, next_cursor or None)."""
    conds = _resource_filters(session, caller, kind, industry, region, status, visibility, q)
    return _page(session, Resource, conds, cursor, limit)


def count_resources(
    session: Session,
    *,
    caller: Caller,
    kind: str | None = None,
    industry: str | None = None,
    region: str | None = None,
    status: str | None = None,
    visibility: str | None = None,
    q: str | None = None,
) -> int:
    """How many resources match the same filters as list_resources, over all pages."""
    return _count(
        session, Resource, _resource_filters(session, caller, kind, industry, region, status, visibility, q)
    )


# ---------------------------------------------------------------- enterprises


def _enterprise_filters(
    session: Session,
    caller: Caller,
    industry: str | None,
    region: str | None,
    stage: str | None,
    tier: str | None,
    visibility: str | None,
    q: str | None,
) -> list[Any]:
    return _filters(session, Enterprise, caller, industry, region, visibility, q, stage=stage, tier=tier)


def list_enterprises(
    session: Session,
    *,
    caller: Caller,
    industry: str | None = None,
    region: str | None = None,
    stage: str | None = None,
    tier: str | None = None,
    visibility: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Enterprise], str | None]:
    """One page of the enterprises the caller can see (`q` searches the name); (rows, next_cursor or None)."""
    conds = _enterprise_filters(session, caller, industry, region, stage, tier, visibility, q)
    return _page(session, Enterprise, conds, cursor, limit)


def count_enterprises(
    session: Session,
    *,
    caller: Caller,
    industry: str | None = None,
    region: str | None = None,
    stage: str | None = None,
    tier: str | None = None,
    visibility: str | None = None,
    q: str | None = None,
) -> int:
    conds = _enterprise_filters(session, caller, industry, region, stage, tier, visibility, q)
    return _count(session, Enterprise, conds)


# ---------------------------------------------------------------- needs


def _need_filters(
    session: Session,
    caller: Caller,
    enterprise_id: int | None,
    kind: str | None,
    industry: str | None,
    region: str | None,
    status: str | None,
    visibility: str | None,
    q: str | None,
) -> list[Any]:
    conds = _filters(session, Need, caller, industry, region, visibility, q, status=status)
    if enterprise_id is not None:
        conds.append(Need.enterprise_id == enterprise_id if valid_id(enterprise_id) else false())
    if kind:
        # a need that names no kinds seeks all of them
        conds.append(or_(_json_has_any(session, Need.kinds, [kind]), func.json_array_length(Need.kinds) == 0))
    return conds


def list_needs(
    session: Session,
    *,
    caller: Caller,
    enterprise_id: int | None = None,
    kind: str | None = None,
    industry: str | None = None,
    region: str | None = None,
    status: str | None = None,
    visibility: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Need], str | None]:
    """One page of the needs the caller can see, oldest first; (rows, next_cursor or None)."""
    conds = _need_filters(session, caller, enterprise_id, kind, industry, region, status, visibility, q)
    return _page(session, Need, conds, cursor, limit)


def count_needs(
    session: Session,
    *,
    caller: Caller,
    enterprise_id: int | None = None,
    kind: str | None = None,
    industry: str | None = None,
    region: str | None = None,
    status: str | None = None,
    visibility: str | None = None,
    q: str | None = None,
) -> int:
    conds = _need_filters(session, caller, enterprise_id, kind, industry, region, status, visibility, q)
    return _count(session, Need, conds)


# ---------------------------------------------------------------- names to pick from


def own_names(session: Session, *, caller: Caller, limit: int = 2000) -> list[tuple[str, int, str, str]]:
    """(type, id, label, enterprise name) of the caller's own enterprises and open needs, by name: what a person
    picks a match's subject from. Type is 'enterprise' or 'need'; a need's label is its title."""
    ents = list(
        session.exec(
            select(Enterprise.id, Enterprise.name)
            .where(Enterprise.tenant_id == caller.tenant)
            .order_by(Enterprise.name)
            .limit(limit)
        )
    )
    names = dict(ents)
    needs = session.exec(
        select(Need.id, Need.title, Need.enterprise_id)
        .where(Need.tenant_id == caller.tenant, Need.status == "open")
        .order_by(Need.title)
        .limit(limit)
    )
    out = [("enterprise", i, name, name) for i, name in ents]
    out += [("need", i, title, names.get(eid, "")) for i, title, eid in needs]
    return out
