"""Tenant-scoped CRUD for enterprises, needs, resources and API keys; used by the API, the importer and the CLI.

Rows are written under the caller's tenant. A private row of another tenant, and any row of another tenant on a
write, reads as "not found" so that its existence is never revealed. Change events are queued on the session and
reach the hub only after the transaction commits (a rolled-back write notifies nobody)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import cast, event, exists, false, func, or_
from sqlalchemy.dialects.postgresql import JSONB, array
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, delete, select

from embeddings.text import has_cjk
from matcher.domain.schemas import (
    DETAILS_MODELS,
    EnterpriseCreate,
    EnterprisePublic,
    EnterpriseUpdate,
    FundCreate,
    IncubatorCreate,
    NeedCreate,
    NeedPublic,
    NeedUpdate,
    ResourcePublic,
    ResourceUpdate,
    ResultCreate,
    ScenarioCreate,
    provider_of,
)
from matcher.domain.tables import ApiKey, DigestLog, Enterprise, Need, Resource, as_utc, utcnow
from matcher.domain.taxonomy import default_taxonomy
from matcher.domain.visibility import visible_clause, visible_to, writable_by
from matcher.errors import Conflict, Forbidden, NotFound, ValidationFailed
from matcher.store.events import ChangeHub
from matcher.store.keys import ROLES, Caller, create_key, ensure_tenant

ResourceCreateModel = ResultCreate | ScenarioCreate | FundCreate | IncubatorCreate
Row = Enterprise | Need | Resource

MAX_LIMIT = 200
MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL; larger ones can only be "not found"

# who may write what; everyone authenticated may read
WRITERS: dict[str, tuple[str, ...]] = {
    "enterprise": ("admin", "officer"),
    "need": ("admin", "officer", "platform"),
    "resource": ("admin", "officer", "platform"),
}
# columns a PATCH may not set to null (lists become empty instead, see the schemas)
_NOT_NULL = {
    "resource": {"title", "description", "status", "visibility", "details"},
    "enterprise": {"name", "description", "digest_frequency", "visibility"},
    "need": {"title", "description", "status", "visibility"},
}


# ---------------------------------------------------------------- change events after commit

_PENDING = "parkmatch.pending_changes"


def _notify(session: Session, hub: ChangeHub | None, method: str, *args: Any) -> None:
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


def _drop_pending(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info[_PENDING] = []


# ---------------------------------------------------------------- shared helpers


def _require_writer(caller: Caller, noun: str) -> None:
    if caller.role not in WRITERS[noun]:
        raise Forbidden(
            f"the {caller.role} role cannot write {noun}s (needs one of: {', '.join(WRITERS[noun])})"
        )


def _field_error(field: str, message: str, type_: str = "value_error") -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {message}", errors=[{"field": field, "message": message, "type": type_}]
    )


def _pydantic_errors(exc: ValidationError, prefix: str) -> ValidationFailed:
    errors = [
        {
            "field": ".".join([prefix, *(str(p) for p in e["loc"])]) if e["loc"] else prefix,
            "message": e["msg"],
            "type": e["type"],
        }
        for e in exc.errors()
    ]
    first = errors[0]
    detail = f"{first['field']}: {first['message']}"
    if len(errors) > 1:
        detail += f" (and {len(errors) - 1} more)"
    return ValidationFailed(detail, errors=errors)


def _reject_nul(value: Any, path: str = "") -> None:
    """PostgreSQL text cannot hold NUL characters; refuse them on both stores alike."""
    if isinstance(value, str):
        if "\x00" in value:
            raise _field_error(path or "body", "contains a NUL character")
    elif isinstance(value, dict):
        for k, v in value.items():
            _reject_nul(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _reject_nul(v, f"{path}.{i}")


def _valid_id(value: int) -> bool:
    return 1 <= value <= MAX_ID


def _visible(model: type[Row], caller: Caller) -> Any:
    return visible_clause(model, caller.tenant)


def _fetch(session: Session, model: type[Row], caller: Caller, id: int, *, write: bool) -> Any:
    """The row if the caller may see it (or, for writes, owns it); NotFound otherwise, with one message."""
    row = session.get(model, id) if _valid_id(id) else None
    if row is not None:
        if writable_by(row, caller.tenant) if write else visible_to(row, caller.tenant):
            return row
    raise NotFound(f"no {model.__name__.lower()} with id {id}")


def _check_external_id(
    session: Session,
    model: type[Resource | Enterprise],
    caller: Caller,
    external_id: str | None,
    own_id: int | None,
) -> None:
    if external_id is None:
        return
    found = session.exec(
        select(model.id).where(model.tenant_id == caller.tenant, model.external_id == external_id)
    ).first()
    if found is not None and found != own_id:
        raise Conflict(
            f"external_id {external_id!r} is already used by {model.__name__.lower()} {found} in your tenant",
            errors=[{"field": "external_id", "message": "already used", "type": "conflict"}],
        )


def _flush(session: Session, row: Row) -> None:
    """Flush a write; a unique constraint lost to a concurrent writer becomes a 409 (the session is rolled back)."""
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        noun = type(row).__name__.lower()
        external_id = getattr(row, "external_id", None)
        if external_id is not None:
            raise Conflict(
                f"external_id {external_id!r} is already used by another {noun} in your tenant",
                errors=[{"field": "external_id", "message": "already used", "type": "conflict"}],
            ) from exc
        raise Conflict(f"the {noun} conflicts with a concurrent write; retry the request") from exc


def _finish(session: Session, commit: bool) -> None:
    if commit:
        session.commit()


def _apply(row: Row, changes: dict[str, Any], noun: str) -> bool:
    for name, value in changes.items():
        if value is None and name in _NOT_NULL[noun]:
            raise _field_error(name, "may not be null", "null_not_allowed")
    changed = False
    for name, value in changes.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        row.updated_at = utcnow()
    return changed


@dataclass(frozen=True)
class _Table:
    """What the shared CRUD helpers need to know of one entity table."""

    model: type[Row]
    text_column: Any  # the column `q` searches
    changed: Callable[[Any], tuple[Any, ...]]  # hub method and arguments for a created or updated row
    lists: tuple[str, ...] = ()  # list columns a PATCH empties when it sets them to null
    language_from: tuple[str, ...] = ()  # the fields a language set to null is detected from again
    prepare: Callable[[Any, dict[str, Any]], None] | None = None  # adjusts a PATCH's changes for the row

    @property
    def noun(self) -> str:
        return self.model.__name__.lower()


def _merge_details(row: Resource, changes: dict[str, Any]) -> None:
    """A PATCH's `details` merged with the stored details, re-validated for the kind; the provider follows."""
    if changes.get("details") is None:
        return
    try:
        model = DETAILS_MODELS[row.kind].model_validate({**row.details, **changes["details"]})
    except ValidationError as exc:
        raise _pydantic_errors(exc, "details") from None
    changes["details"] = model.model_dump(mode="json", exclude_none=True)
    changes["provider"] = provider_of(row.kind, changes["details"])


_RESOURCES = _Table(
    Resource,
    Resource.title,
    lambda row: ("resources_changed", [row]),
    language_from=("title", "description"),
    prepare=_merge_details,
)
_ENTERPRISES = _Table(
    Enterprise,
    Enterprise.name,
    lambda row: ("demand_changed", [], [row]),
    lists=("digest_kinds",),
    language_from=("name", "description"),
)
_NEEDS = _Table(Need, Need.title, lambda row: ("demand_changed", [row], []), lists=("kinds",))


def _claim_external_id(session: Session, model: Any, caller: Caller, fields: dict[str, Any]) -> None:
    """Before an insert: the external_id is free in the caller's tenant, and the tenant exists."""
    _check_external_id(session, model, caller, fields["external_id"], None)
    ensure_tenant(session, caller.tenant)


def _insert(session: Session, table: _Table, row: Any, hub: ChangeHub | None, commit: bool) -> Any:
    _flush(session, row)
    _notify(session, hub, *table.changed(row))
    _finish(session, commit)
    return row


def _writable(session: Session, table: _Table, caller: Caller, id: int) -> Any:
    """The row the caller may write (role and tenant); Forbidden or NotFound otherwise."""
    _require_writer(caller, table.noun)
    return _fetch(session, table.model, caller, id, write=True)


def _update(
    session: Session,
    table: _Table,
    caller: Caller,
    id: int,
    data: Any,
    hub: ChangeHub | None,
    commit: bool,
) -> Any:
    """Apply the fields given, as the table's settings say (see _Table); a new external_id must be free."""
    row = _writable(session, table, caller, id)
    changes = data.model_dump(exclude_unset=True)
    _reject_nul(changes)
    for name in table.lists:
        if name in changes and changes[name] is None:
            changes[name] = []
    if table.prepare is not None:
        table.prepare(row, changes)
    if table.language_from and "language" in changes and changes["language"] is None:
        changes["language"] = detect_language(
            *(changes.get(name, getattr(row, name)) for name in table.language_from)
        )
    if changes.get("external_id") is not None:
        _check_external_id(session, table.model, caller, changes["external_id"], row.id)
    if _apply(row, changes, table.noun):
        _flush(session, row)
        _notify(session, hub, *table.changed(row))
    _finish(session, commit)
    return row


def _remove(session: Session, row: Row, hub: ChangeHub | None, commit: bool, method: str, *args: Any) -> None:
    session.delete(row)
    session.flush()
    _notify(session, hub, method, *args)
    _finish(session, commit)


def detect_language(*texts: str | None) -> str:
    """zh when the text has any CJK character, else en."""
    return "zh" if any(has_cjk(t or "") for t in texts) else "en"


# ---------------------------------------------------------------- filters and pagination


def encode_cursor(last_id: int) -> str:
    raw = json.dumps({"after": last_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _field_error("cursor", "not a cursor returned by this API") from None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_ID:
        raise _field_error("cursor", "not a cursor returned by this API")
    return after


def _page(
    session: Session, model: type[Row], conds: list[Any], cursor: str | None, limit: int
) -> tuple[list, str | None]:
    if not 1 <= limit <= MAX_LIMIT:
        raise _field_error("limit", f"must be between 1 and {MAX_LIMIT}")
    stmt = select(model).where(*conds)
    if cursor:
        stmt = stmt.where(model.id > decode_cursor(cursor))
    rows = list(session.exec(stmt.order_by(model.id).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def _count(session: Session, model: type[Row], conds: list[Any]) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(*conds)).one())


def _json_has_any(session: Session, column: Any, values: Sequence[str]) -> Any:
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
    table: _Table,
    caller: Caller,
    industry: str | None,
    region: str | None,
    visibility: str | None,
    q: str | None,
    **equal: str | None,
) -> list[Any]:
    """The rows the caller can see, narrowed by the filters given; each of `equal` names a column to match."""
    model = table.model
    conds: list[Any] = [_visible(model, caller)]
    if industry and industry.strip():
        conds.append(_json_has_any(session, model.industries, _industry_tags(industry)))
    if region and region.strip():
        conds.append(model.region == region.strip())
    if visibility:
        conds.append(model.visibility == visibility)
    if q and q.replace("\x00", "").strip():
        conds.append(table.text_column.icontains(q.replace("\x00", "").strip(), autoescape=True))
    conds.extend(getattr(model, name) == value for name, value in equal.items() if value)
    return conds


def _unknown(tags: Iterable[str]) -> list[str]:
    return default_taxonomy().unknown(tags)


def _public_data(row: Need | Resource, caller: Caller, private: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row's fields as its public view shows them; the tenant and the `private` fields only to its own tenant."""
    own = row.tenant_id == caller.tenant
    data = row.model_dump()
    data.update(
        unknown_industries=_unknown(row.industries),
        tenant=row.tenant_id if own else None,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )
    if not own:
        data.update(dict.fromkeys(private))
    return data


# ---------------------------------------------------------------- resources


def create_resource(
    session: Session,
    *,
    caller: Caller,
    data: ResourceCreateModel,
    hub: ChangeHub | None = None,
    commit: bool = True,
) -> Resource:
    """Store a resource: provider from its details, language detected when absent, external_id unique per tenant."""
    _require_writer(caller, "resource")
    fields = data.model_dump(exclude={"kind", "details"})
    details = data.details.model_dump(mode="json", exclude_none=True)
    _reject_nul({**fields, "details": details})
    _claim_external_id(session, Resource, caller, fields)
    fields["language"] = fields["language"] or detect_language(fields["title"], fields["description"])
    row = Resource(
        **fields,
        kind=data.kind,
        details=details,
        provider=provider_of(data.kind, details),
        tenant_id=caller.tenant,
    )
    return _insert(session, _RESOURCES, row, hub, commit)


def get_resource(session: Session, *, caller: Caller, id: int) -> Resource:
    return _fetch(session, Resource, caller, id, write=False)


def update_resource(
    session: Session,
    *,
    caller: Caller,
    id: int,
    data: ResourceUpdate,
    hub: ChangeHub | None = None,
    commit: bool = True,
) -> Resource:
    """Apply the fields given; `details` is merged with the stored details and re-validated for the kind."""
    return _update(session, _RESOURCES, caller, id, data, hub, commit)


def delete_resource(
    session: Session, *, caller: Caller, id: int, hub: ChangeHub | None = None, commit: bool = True
) -> None:
    _remove(session, _writable(session, _RESOURCES, caller, id), hub, commit, "resources_removed", [id])


def _resource_filters(
    session: Session, caller: Caller, kind, industry, region, status, visibility, q
) -> list[Any]:
    return _filters(session, _RESOURCES, caller, industry, region, visibility, q, kind=kind, status=status)


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


def to_public_resource(row: Resource, caller: Caller) -> ResourcePublic:
    return ResourcePublic.model_validate(_public_data(row, caller, private=("external_id",)))


# ---------------------------------------------------------------- enterprises


def create_enterprise(
    session: Session,
    *,
    caller: Caller,
    data: EnterpriseCreate,
    hub: ChangeHub | None = None,
    commit: bool = True,
) -> Enterprise:
    _require_writer(caller, "enterprise")
    fields = data.model_dump()
    _reject_nul(fields)
    _claim_external_id(session, Enterprise, caller, fields)
    return _insert(session, _ENTERPRISES, Enterprise(**fields, tenant_id=caller.tenant), hub, commit)


def get_enterprise(session: Session, *, caller: Caller, id: int) -> Enterprise:
    return _fetch(session, Enterprise, caller, id, write=False)


def update_enterprise(
    session: Session,
    *,
    caller: Caller,
    id: int,
    data: EnterpriseUpdate,
    hub: ChangeHub | None = None,
    commit: bool = True,
) -> Enterprise:
    return _update(session, _ENTERPRISES, caller, id, data, hub, commit)


def delete_enterprise(
    session: Session, *, caller: Caller, id: int, hub: ChangeHub | None = None, commit: bool = True
) -> list[int]:
    """Delete an enterprise with its needs and digest history; returns the ids of the needs removed with it."""
    row = _writable(session, _ENTERPRISES, caller, id)
    need_ids = list(session.exec(select(Need.id).where(Need.enterprise_id == id)))
    session.exec(delete(Need).where(Need.enterprise_id == id))
    session.exec(delete(DigestLog).where(DigestLog.enterprise_id == id))
    _remove(session, row, hub, commit, "demand_removed", need_ids, [id])
    return need_ids


def _enterprise_filters(
    session: Session, caller: Caller, industry, region, stage, tier, visibility, q
) -> list[Any]:
    return _filters(session, _ENTERPRISES, caller, industry, region, visibility, q, stage=stage, tier=tier)


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


def to_public_enterprise(row: Enterprise, caller: Caller) -> EnterprisePublic:
    """Another tenant sees the public profile only: never contact, digest preferences, import key or tenant."""
    own = row.tenant_id == caller.tenant
    data = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "industries": row.industries,
        "unknown_industries": _unknown(row.industries),
        "region": row.region,
        "stage": row.stage,
        "tier": row.tier,
        "size": row.size,
        "visibility": row.visibility,
        "created_at": as_utc(row.created_at),
        "updated_at": as_utc(row.updated_at),
    }
    if own:
        data.update(
            external_id=row.external_id,
            email=row.email,
            digest_frequency=row.digest_frequency,
            digest_kinds=row.digest_kinds,
            language=row.language,
            unsubscribed=row.unsubscribed,
            tenant=row.tenant_id,
        )
    return EnterprisePublic.model_validate(data)


# ---------------------------------------------------------------- needs


def create_need(
    session: Session, *, caller: Caller, data: NeedCreate, hub: ChangeHub | None = None, commit: bool = True
) -> Need:
    """Store a need of one of the caller's own enterprises."""
    _require_writer(caller, "need")
    fields = data.model_dump()
    _reject_nul(fields)
    enterprise = session.get(Enterprise, data.enterprise_id) if _valid_id(data.enterprise_id) else None
    if enterprise is None or enterprise.tenant_id != caller.tenant:
        raise _field_error(
            "enterprise_id", f"no enterprise with id {data.enterprise_id} in your tenant", "not_found"
        )
    return _insert(session, _NEEDS, Need(**fields, tenant_id=caller.tenant), hub, commit)


def get_need(session: Session, *, caller: Caller, id: int) -> Need:
    return _fetch(session, Need, caller, id, write=False)


def update_need(
    session: Session,
    *,
    caller: Caller,
    id: int,
    data: NeedUpdate,
    hub: ChangeHub | None = None,
    commit: bool = True,
) -> Need:
    return _update(session, _NEEDS, caller, id, data, hub, commit)


def delete_need(
    session: Session, *, caller: Caller, id: int, hub: ChangeHub | None = None, commit: bool = True
) -> None:
    _remove(session, _writable(session, _NEEDS, caller, id), hub, commit, "demand_removed", [id], [])


def _need_filters(
    session: Session, caller: Caller, enterprise_id, kind, industry, region, status, visibility, q
) -> list[Any]:
    conds = _filters(session, _NEEDS, caller, industry, region, visibility, q, status=status)
    if enterprise_id is not None:
        conds.append(Need.enterprise_id == enterprise_id if _valid_id(enterprise_id) else false())
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


def to_public_need(row: Need, caller: Caller) -> NeedPublic:
    return NeedPublic.model_validate(_public_data(row, caller))


# ---------------------------------------------------------------- API keys (admin, own tenant only)


def _require_admin(caller: Caller) -> None:
    if not caller.is_admin:
        raise Forbidden(f"managing API keys needs the admin role (you are {caller.role})")


def create_api_key(
    session: Session, *, caller: Caller, role: str, name: str = "", commit: bool = True
) -> tuple[ApiKey, str]:
    """A new key in the caller's own tenant; the plaintext is returned once and never stored."""
    _require_admin(caller)
    if role not in ROLES:
        raise _field_error("role", f"expected one of {', '.join(ROLES)}")
    row, plaintext = create_key(session, tenant=caller.tenant, role=role, name=name)
    _finish(session, commit)
    return row, plaintext


def list_api_keys(session: Session, *, caller: Caller) -> list[ApiKey]:
    _require_admin(caller)
    return list(session.exec(select(ApiKey).where(ApiKey.tenant_id == caller.tenant).order_by(ApiKey.id)))


def revoke_api_key(session: Session, *, caller: Caller, id: int, commit: bool = True) -> ApiKey:
    """Revoke a key of the caller's tenant (revoking twice keeps the first time); another tenant's is not found."""
    _require_admin(caller)
    row = session.get(ApiKey, id) if _valid_id(id) else None
    if row is None or row.tenant_id != caller.tenant:
        raise NotFound(f"no API key with id {id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.flush()
    _finish(session, commit)
    return row
