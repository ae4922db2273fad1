"""Bulk import of resources from JSONL, CSV and XLSX: decode, map columns, validate, upsert by external_id.

Each row is validated on its own (one bad row never loses the good ones) and the valid rows are written in
batches, one transaction per batch; a batch that the database refuses is retried row by row, so every record
is either written whole or not at all. See docs/import.md for the column mapping and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from embeddings.text import has_cjk
from matcher.domain.schemas import (
    DETAILS_MODELS,
    PROVIDER_FIELD,
    RESOURCE_KINDS,
    FundCreate,
    IncubatorCreate,
    ResultCreate,
    ScenarioCreate,
    provider_of,
)
from matcher.domain.tables import Resource, utcnow
from matcher.errors import PayloadTooLarge, ValidationFailed
from matcher.ingest.columns import (
    Column,
    coerce,
    load_mapping,
    map_record,
    normalize_kind,
    resolve_columns,
)
from matcher.ingest.tabular import ParsedFile, detect_format, read_table
from matcher.settings import Settings
from matcher.store.events import ChangeHub
from matcher.store.keys import Caller, ensure_tenant

logger = logging.getLogger(__name__)

__all__ = [
    "ImportReport",
    "ImportTotals",
    "RowOutcome",
    "check_kind",
    "import_file",
    "load_mapping",
    "upsert_records",
]

RowStatus = Literal["created", "updated", "unchanged", "rejected"]
CREATE_MODELS: dict[str, type[BaseModel]] = {
    "result": ResultCreate,
    "scenario": ScenarioCreate,
    "fund": FundCreate,
    "incubator": IncubatorCreate,
}
BATCH_SIZE = 500

# ---------------------------------------------------------------------------------------------- report


class RowOutcome(BaseModel):
    row: int = Field(description="line (JSONL) or sheet row (CSV/XLSX, the header is row 1) of the record")
    external_id: str | None = None
    kind: str | None = None
    status: RowStatus
    id: int | None = Field(default=None, description="the resource id (none for rejected rows and dry runs)")
    reason: str | None = Field(default=None, description="'field: message' for rejected rows")


class ImportTotals(BaseModel):
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


class ImportReport(BaseModel):
    format: str
    encoding: str | None = None
    dry_run: bool = False
    totals: ImportTotals = Field(default_factory=ImportTotals)
    ignored_columns: list[str] = Field(default_factory=list, description="columns that map to no field")
    rows: list[RowOutcome] = Field(default_factory=list)

    def add(self, outcome: RowOutcome) -> None:
        self.rows.append(outcome)
        self.totals.rows += 1
        setattr(self.totals, outcome.status, getattr(self.totals, outcome.status) + 1)


# ---------------------------------------------------------------------------------------------- rows -> models


@dataclass
class _Plan:
    row: int
    kind: str
    external_id: str | None
    model: BaseModel
    present: set[str]  # top-level fields the file gives for this row (an empty cell resets the field)
    present_details: set[str]


def _reason(exc: ValidationError, prefix: str = "") -> str:
    errors = exc.errors()
    first = errors[0]
    loc = ".".join([prefix] * bool(prefix) + [str(p) for p in first.get("loc", ())]) or "row"
    msg = str(first.get("msg", "invalid"))
    if first.get("type") == "missing":
        msg = "required"
    out = f"{loc}: {msg}"
    if len(errors) > 1:
        out += f" (and {len(errors) - 1} more)"
    return out


def _plan_row(
    row: int, raw: Mapping[str, Any], columns: Sequence[Column] | None, default_kind: str | None
) -> _Plan | RowOutcome:
    record, present, present_details = map_record(raw, columns)
    ext = record.get("external_id")
    ext_id = str(ext).strip() if ext is not None and str(ext).strip() else None
    row_kind = record.pop("kind", None)
    kind = default_kind
    if row_kind is not None:
        kind = normalize_kind(row_kind)
        if kind is None:
            return RowOutcome(
                row=row,
                external_id=ext_id,
                status="rejected",
                reason=f"kind: unknown kind {row_kind!r}; expected {', '.join(RESOURCE_KINDS)}",
            )
        if default_kind is not None and kind != default_kind:
            return RowOutcome(
                row=row,
                external_id=ext_id,
                kind=kind,
                status="rejected",
                reason=f"kind: the row says {kind} but the import is for {default_kind}",
            )
    if kind is None:
        return RowOutcome(
            row=row,
            external_id=ext_id,
            status="rejected",
            reason="kind: missing; give the kind for the whole file or a kind/类型 column",
        )
    provider = record.pop("__provider__", None)
    if provider is not None and isinstance(record.get("details"), dict):
        record["details"].setdefault(PROVIDER_FIELD[kind], coerce("details.x", provider, 1.0))
        present_details.add(PROVIDER_FIELD[kind])
    record["kind"] = kind
    nul = _nul_path(record)
    if nul is not None:
        return RowOutcome(
            row=row,
            external_id=ext_id,
            kind=kind,
            status="rejected",
            reason=f"{nul}: contains a NUL character",
        )
    try:
        model = CREATE_MODELS[kind].model_validate(record)
    except ValidationError as exc:
        return RowOutcome(row=row, external_id=ext_id, kind=kind, status="rejected", reason=_reason(exc))
    return _Plan(row, kind, model.external_id, model, present, present_details)  # type: ignore[attr-defined]


def _nul_path(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides (PostgreSQL text cannot hold one; both stores refuse it alike)."""
    if isinstance(value, str):
        return (path or "row") if "\x00" in value else None
    items: Iterable[tuple[Any, Any]] = ()
    if isinstance(value, Mapping):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    for k, v in items:
        found = _nul_path(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def plan_rows(
    records: Iterable[tuple[int, Mapping[str, Any] | str]],
    *,
    kind: str | None = None,
    columns: Sequence[Column] | None = None,
    mapping: Mapping[str, str | None] | None = None,
) -> list[_Plan | RowOutcome]:
    """Validate every row; a later row repeating an external_id of the same file is rejected (the first wins).

    `columns` are the resolved headers of a table; JSON rows (no header) resolve their own keys with `mapping`."""
    seen: dict[str, int] = {}
    out: list[_Plan | RowOutcome] = []
    cache: dict[tuple[str, ...], list[Column]] = {}
    for row, raw in records:
        if isinstance(raw, str):
            out.append(RowOutcome(row=row, status="rejected", reason=raw))
            continue
        cols = columns
        if cols is None:
            keys = tuple(str(k) for k in raw)
            cols = cache.get(keys)
            if cols is None:
                cols = cache[keys] = resolve_columns(keys, mapping)
        planned = _plan_row(row, raw, cols, kind)
        ext = planned.external_id
        if ext is not None:
            if ext in seen:
                out.append(
                    RowOutcome(
                        row=row,
                        external_id=ext,
                        kind=planned.kind,
                        status="rejected",
                        reason=f"external_id: duplicate of row {seen[ext]} in this file "
                        "(the first occurrence is kept)",
                    )
                )
                continue
            seen[ext] = row
        out.append(planned)
    return out


# ---------------------------------------------------------------------------------------------- writing


def _values(plan: _Plan, existing: Resource | None) -> dict[str, Any] | str:
    """Column values for the row: everything for a new record; for an update, the fields the file gives
    (details merged key by key and validated again). A string is a rejection reason."""
    m = plan.model
    data = m.model_dump(mode="python", exclude={"details", "kind"})
    new_details = m.details.model_dump(mode="json", exclude_none=True)  # type: ignore[attr-defined]
    if existing is None:
        values = dict(data)
        values["details"] = new_details
        values["language"] = data.get("language") or _language(data["title"], data.get("description", ""))
    else:
        given = plan.present | m.model_fields_set
        values = {k: v for k, v in data.items() if k in given and k != "language"}
        given_details = plan.present_details | m.details.model_fields_set  # type: ignore[attr-defined]
        details = dict(existing.details or {})
        fields = DETAILS_MODELS[plan.kind].model_fields
        details.update({k: new_details.get(k) for k in given_details if k in fields})
        try:
            merged = DETAILS_MODELS[plan.kind].model_validate(details)
            details = merged.model_dump(mode="json", exclude_none=True)
        except ValidationError as exc:
            return _reason(exc, "details")
        values["details"] = details
        title = values.get("title", existing.title)
        description = values.get("description", existing.description)
        if "language" in given and data.get("language"):
            values["language"] = data["language"]
        elif "title" in values or "description" in values:
            values["language"] = _language(title, description)
    values["provider"] = provider_of(plan.kind, values["details"])
    values.pop("external_id", None)
    return values


def _language(title: str, description: str) -> str:
    return "zh" if has_cjk(f"{title} {description}") else "en"


def _changed(existing: Resource, values: Mapping[str, Any]) -> bool:
    return any(getattr(existing, k) != v for k, v in values.items())


def _existing(session: Session, tenant: str, ext_ids: Sequence[str]) -> dict[str, Resource]:
    if not ext_ids:
        return {}
    rows = session.exec(
        select(Resource).where(Resource.tenant_id == tenant, Resource.external_id.in_(ext_ids))  # type: ignore[union-attr]
    ).all()
    return {r.external_id: r for r in rows if r.external_id is not None}


def _apply(
    session: Session, tenant: str, plan: _Plan, existing: Resource | None, dry_run: bool
) -> tuple[RowOutcome, Resource | None]:
    base = {"row": plan.row, "external_id": plan.external_id, "kind": plan.kind}
    if existing is not None and existing.kind != plan.kind:
        return RowOutcome(
            **base,
            status="rejected",
            reason=f"kind: external_id {plan.external_id!r} already "
            f"names a {existing.kind} (id {existing.id}) in this tenant",
        ), None
    values = _values(plan, existing)
    if isinstance(values, str):
        return RowOutcome(**base, status="rejected", reason=values), None
    if existing is None:
        if dry_run:
            return RowOutcome(**base, status="created"), None
        res = Resource(tenant_id=tenant, kind=plan.kind, external_id=plan.external_id, **values)
        session.add(res)
        return RowOutcome(**base, status="created"), res
    if not _changed(existing, values):
        return RowOutcome(**base, status="unchanged", id=existing.id), None
    if dry_run:
        return RowOutcome(**base, status="updated", id=existing.id), None
    for k, v in values.items():
        setattr(existing, k, v)
    existing.updated_at = utcnow()
    session.add(existing)
    return RowOutcome(**base, status="updated", id=existing.id), existing


def upsert_planned(
    session: Session,
    *,
    tenant: str,
    plans: Sequence[_Plan | RowOutcome],
    report: ImportReport,
    dry_run: bool = False,
    hub: ChangeHub | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> list[Resource]:
    """Write validated rows in batches, one transaction each; returns the committed, changed resources.

    `hub.resources_changed` is called once, after the last commit, with every resource that changed (also when
    a later batch fails, for the batches already committed)."""
    outcomes: dict[int, RowOutcome] = {}
    changed: list[Resource] = []
    valid = [p for p in plans if isinstance(p, _Plan)]
    for p in plans:
        if isinstance(p, RowOutcome):
            outcomes[id(p)] = p
            if progress:
                progress(1)
    if not dry_run and valid:
        ensure_tenant(session, tenant)
        session.commit()
    try:
        for start in range(0, len(valid), batch_size):
            batch = valid[start : start + batch_size]
            results = _write_batch(session, tenant, batch, dry_run)
            if results is None:  # the database refused the batch: retry row by row
                results = [_write_one(session, tenant, p, dry_run) for p in batch]
            for plan, (outcome, res) in zip(batch, results, strict=True):
                outcomes[id(plan)] = outcome
                if res is not None:
                    changed.append(res)
                    if outcome.status == "created":
                        outcome.id = res.id
            if progress:
                progress(len(batch))
    finally:
        if hub is not None and changed:
            hub.resources_changed(changed)
    for p in plans:
        report.add(outcomes[id(p)])
    return changed


def _write_batch(
    session: Session, tenant: str, batch: Sequence[_Plan], dry_run: bool
) -> list[tuple[RowOutcome, Resource | None]] | None:
    try:
        existing = _existing(session, tenant, [p.external_id for p in batch if p.external_id])
        results = [_apply(session, tenant, p, existing.get(p.external_id or ""), dry_run) for p in batch]
        if dry_run:
            session.rollback()
        else:
            session.commit()
        return results
    except SQLAlchemyError:
        session.rollback()
        logger.warning("import batch refused by the database; retrying its %d rows one by one", len(batch))
        return None
    except BaseException:
        session.rollback()
        raise


def _write_one(
    session: Session, tenant: str, plan: _Plan, dry_run: bool
) -> tuple[RowOutcome, Resource | None]:
    try:
        existing = _existing(session, tenant, [plan.external_id] if plan.external_id else [])
        result = _apply(session, tenant, plan, existing.get(plan.external_id or ""), dry_run)
        if dry_run:
            session.rollback()
        else:
            session.commit()
        return result
    except SQLAlchemyError as exc:
        session.rollback()
        msg = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        return RowOutcome(
            row=plan.row,
            external_id=plan.external_id,
            kind=plan.kind,
            status="rejected",
            reason=f"database: {msg}",
        ), None
    except BaseException:
        session.rollback()
        raise


# ---------------------------------------------------------------------------------------------- entry points


def check_kind(kind: str | None) -> str | None:
    """The canonical kind for an option value; ValidationFailed for an unknown one."""
    if kind is None or not str(kind).strip():
        return None
    canonical = normalize_kind(kind)
    if canonical is None:
        raise ValidationFailed(f"kind: unknown kind {kind!r}; expected {', '.join(RESOURCE_KINDS)}")
    return canonical


def import_file(
    session: Session,
    *,
    caller: Caller,
    data: bytes,
    settings: Settings,
    filename: str | None = None,
    content_type: str | None = None,
    kind: str | None = None,
    mapping: Mapping[str, str | None] | None = None,
    encoding: str | None = None,
    dry_run: bool = False,
    hub: ChangeHub | None = None,
    progress: Callable[[int], None] | None = None,
    on_parsed: Callable[[ParsedFile], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Import resources from a file's bytes into the caller's tenant; commits (one transaction per batch).

    Raises PayloadTooLarge (413), UnsupportedMediaType (415) or ValidationFailed (422) when the file itself is
    unusable; problems with single rows are reported per row instead."""
    if len(data) > settings.max_import_bytes:
        raise PayloadTooLarge(
            f"the file is {len(data):,} bytes; the limit is {settings.max_import_bytes:,} (MATCHER_MAX_IMPORT_BYTES)"
        )
    default_kind = check_kind(kind)
    fmt = detect_format(data, filename=filename, content_type=content_type)
    parsed = read_table(data, fmt, max_rows=settings.max_import_rows, encoding=encoding)
    if on_parsed is not None:
        on_parsed(parsed)
    report = ImportReport(format=parsed.format, encoding=parsed.encoding, dry_run=dry_run)
    columns = None
    if parsed.columns:
        columns = resolve_columns(parsed.columns, mapping)
        report.ignored_columns = [c.name for c in columns if c.target is None and c.name]
        if not any(c.target == "title" for c in columns):
            raise ValidationFailed(
                "no column maps to title (标题/名称/title); see docs/import.md for the headers understood"
            )
    else:
        keys: dict[str, None] = {}
        for _row, raw in parsed.records:
            if isinstance(raw, dict):
                keys.update(dict.fromkeys(str(k) for k in raw))
        report.ignored_columns = [c.name for c in resolve_columns(keys, mapping) if c.target is None]
    plans = plan_rows(parsed.records, kind=default_kind, columns=columns, mapping=mapping)
    upsert_planned(
        session,
        tenant=caller.tenant,
        plans=plans,
        report=report,
        dry_run=dry_run,
        hub=hub,
        batch_size=batch_size,
        progress=progress,
    )
    logger.info("import into %s: %s", caller.tenant, report.totals.model_dump())
    return report


def upsert_records(
    session: Session,
    *,
    tenant: str,
    records: Iterable[Mapping[str, Any]],
    kind: str | None = None,
    dry_run: bool = False,
    hub: ChangeHub | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Upsert resource dicts (API field names, Chinese headers or `details.x` keys) into a tenant: the demo
    loader and other callers with records already in memory use the same path as file imports."""
    report = ImportReport(format="records", dry_run=dry_run)
    plans = plan_rows(((n, dict(r)) for n, r in enumerate(records, start=1)), kind=check_kind(kind))
    upsert_planned(
        session, tenant=tenant, plans=plans, report=report, dry_run=dry_run, hub=hub, progress=progress
    )
    return report
