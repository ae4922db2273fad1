"""Bulk import of resources from JSONL, CSV and XLSX: decode, map columns, validate, then upsert by external_id.

Each row is validated on its own (one bad row never loses the good ones); the valid rows are written by the
store's bulk upsert (matcher.store.bulk), under the same rules as a single create or update through the API.
See docs/import.md for the column mapping and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from sqlmodel import Session

from matcher.domain.schemas import (
    PROVIDER_FIELD,
    RESOURCE_KINDS,
    FundCreate,
    IncubatorCreate,
    ResultCreate,
    ScenarioCreate,
)
from matcher.errors import PayloadTooLarge, ValidationFailed, invalid, invalid_input
from matcher.ingest import bounded_json
from matcher.ingest.columns import Column, coerce, map_record, normalize_kind, resolve_columns
from matcher.ingest.tabular import ParsedFile, detect_format, read_table
from matcher.settings import Settings
from matcher.store.bulk import BATCH_SIZE, ResourceUpsert, UpsertStatus, upsert_resources
from matcher.store.events import ChangeHub
from matcher.store.feed import written_seq
from matcher.store.keys import Caller

logger = logging.getLogger(__name__)

CREATE_MODELS: dict[str, type[BaseModel]] = {
    "result": ResultCreate,
    "scenario": ScenarioCreate,
    "fund": FundCreate,
    "incubator": IncubatorCreate,
}

# ---------------------------------------------------------------------------------------------- report


class RowOutcome(BaseModel):
    row: int = Field(description="line (JSONL) or sheet row (CSV/XLSX, the header is row 1) of the record")
    external_id: str | None = None
    kind: str | None = None
    status: UpsertStatus
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
    seq: int | None = Field(
        default=None,
        ge=0,
        description="change-feed seq the import's writes are visible at (none for a dry run): pass it as min_seq "
        "to read them on any replica",
    )

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
    item: ResourceUpsert


def _rejected(row: int, reason: str, external_id: str | None = None, kind: str | None = None) -> RowOutcome:
    return RowOutcome(row=row, external_id=external_id, kind=kind, status="rejected", reason=reason)


def _row_kind(row_kind: Any, default_kind: str | None) -> str:
    """The row's kind: its own kind/类型 cell, else the import's; ValidationFailed when unknown or at odds."""
    kind = default_kind
    if row_kind is not None:
        kind = normalize_kind(row_kind)
        if kind is None:
            raise invalid("kind", f"unknown kind {row_kind!r}; expected {', '.join(RESOURCE_KINDS)}")
        if default_kind is not None and kind != default_kind:
            raise invalid("kind", f"the row says {kind} but the import is for {default_kind}")
    if kind is None:
        raise invalid("kind", "missing; give the kind for the whole file or a kind/类型 column")
    return kind


def _plan_row(
    row: int, raw: Mapping[str, Any], columns: Sequence[Column] | None, default_kind: str | None
) -> _Plan | RowOutcome:
    try:
        record, present, present_details = map_record(raw, columns)
    except ValidationFailed as exc:  # a cell nested too deep to convert
        return _rejected(row, exc.detail)
    ext = record.get("external_id")
    ext_id = str(ext).strip() if ext is not None and str(ext).strip() else None
    row_kind = record.pop("kind", None)
    try:
        kind = _row_kind(row_kind, default_kind)
    except ValidationFailed as exc:
        # a known kind at odds with the import's is still named in the report
        return _rejected(row, exc.detail, ext_id, normalize_kind(row_kind) if row_kind is not None else None)
    provider = record.pop("__provider__", None)
    if provider is not None and isinstance(record.get("details"), dict):
        field = PROVIDER_FIELD[kind]
        try:
            record["details"].setdefault(field, coerce("details.x", provider, 1.0))
        except ValidationFailed:  # coerce's only refusal: a JSON cell nested too deep
            return _rejected(row, f"details.{field}: {bounded_json.TooDeep()}", ext_id, kind)
        present_details.add(field)
    record["kind"] = kind
    try:
        model = CREATE_MODELS[kind].model_validate(record)
    except ValidationError as exc:
        return _rejected(row, invalid_input(exc.errors(), whole="row").detail, ext_id, kind)
    item = ResourceUpsert(model, frozenset(present), frozenset(present_details))  # type: ignore[arg-type]
    return _Plan(row, kind, model.external_id, item)  # type: ignore[attr-defined]


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
            out.append(_rejected(row, raw))
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
                reason = (
                    f"external_id: duplicate of row {seen[ext]} in this file (the first occurrence is kept)"
                )
                out.append(_rejected(row, reason, ext, planned.kind))
                continue
            seen[ext] = row
        out.append(planned)
    return out


# ---------------------------------------------------------------------------------------------- writing


def upsert_planned(
    session: Session,
    *,
    caller: Caller,
    plans: Sequence[_Plan | RowOutcome],
    report: ImportReport,
    dry_run: bool = False,
    hub: ChangeHub | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write the valid rows through the store's bulk upsert (batches, one transaction and one change event
    each) and add every row's outcome to the report, in file order."""
    valid = [p for p in plans if isinstance(p, _Plan)]
    if progress is not None:
        for _ in range(len(plans) - len(valid)):
            progress(1)
    written = upsert_resources(
        session,
        caller=caller,
        items=[p.item for p in valid],
        dry_run=dry_run,
        hub=hub,
        batch_size=batch_size,
        progress=progress,
    )
    outcomes = {
        id(plan): RowOutcome(
            row=plan.row,
            external_id=plan.external_id,
            kind=plan.kind,
            status=done.status,
            id=done.id,
            reason=done.reason,
        )
        for plan, done in zip(valid, written, strict=True)
    }
    for p in plans:
        report.add(outcomes[id(p)] if isinstance(p, _Plan) else p)


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
    parsed = read_table(
        data, fmt, max_rows=settings.max_import_rows, max_bytes=settings.max_import_bytes, encoding=encoding
    )
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
        caller=caller,
        plans=plans,
        report=report,
        dry_run=dry_run,
        hub=hub,
        batch_size=batch_size,
        progress=progress,
    )
    if not dry_run:
        report.seq = written_seq(session)
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
    # trusted code in the process, not an API key: it writes as the tenant's admin would
    caller = Caller(tenant=tenant, role="admin")
    upsert_planned(
        session, caller=caller, plans=plans, report=report, dry_run=dry_run, hub=hub, progress=progress
    )
    return report
