"""Importing enterprises from a file (CSV, JSON Lines, XLSX): a park's prospect list (摸底名单) or member list.
Rows are upserted by external_id within the tenant through the store's own create and update (the same rules,
audit, change events and tier history as the API; the tier history says `import`); `tier` fills rows without a
tier of their own (prospects by default on the API)."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session, select

from matcher.domain.schemas import EnterpriseCreate, EnterpriseUpdate
from matcher.domain.tables import Enterprise
from matcher.errors import MatcherError, PayloadTooLarge, ValidationFailed, invalid_input
from matcher.ingest.columns import header_key
from matcher.ingest.importer import ImportReport, RowOutcome
from matcher.ingest.tabular import detect_format, read_table
from matcher.settings import Settings
from matcher.store import records
from matcher.store.events import ChangeHub
from matcher.store.feed import written_seq
from matcher.store.keys import Caller

logger = logging.getLogger(__name__)

_COLUMNS: dict[str, str] = {
    "name": "name|企业名称|名称|公司名称|企业|单位名称|company",
    "description": "description|简介|描述|企业简介|主营业务|业务简介|主营|summary",
    "industries": "industries|industry|行业|领域|所属行业|产业|行业领域|标签|tags",
    "region": "region|地区|所在地|区域|城市|所在园区|园区",
    "stage": "stage|阶段|发展阶段|融资阶段|融资轮次",
    "tier": "tier|梯队|层级|培育层级|分层|培育阶段",
    "size": "size|规模|企业规模",
    "email": "email|邮箱|电子邮箱|联系邮箱|e-mail",
    "external_id": "external_id|ext_id|编号|企业编号|统一社会信用代码|信用代码|code",
    "visibility": "visibility|可见性|公开范围",
    "language": "language|lang|语言",
}
HEADERS = {header_key(h): field for field, names in _COLUMNS.items() for h in names.split("|")}
_VALUES = {
    "tier": {"摸底": "prospect", "潜在": "prospect", "储备": "prospect", "入库": "incubating", "入库培育": "incubating",
             "培育": "incubating", "重点": "key_account", "重点企业": "key_account", "精准服务": "key_account",
             "key account": "key_account", "pool": "incubating"},
    "size": {"微型": "micro", "小型": "small", "中型": "medium", "大型": "large"},
    "visibility": {"公开": "public", "私有": "private", "不公开": "private", "内部": "private"},
    "language": {"中文": "zh", "英文": "en", "chinese": "zh", "english": "en"},
}  # fmt: skip


def _row(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(fields, ignored headers) of one raw row; empty cells are left out."""
    out: dict[str, Any] = {}
    ignored = []
    for header, value in raw.items():
        field = HEADERS.get(header_key(str(header)))
        if field is None:
            ignored.append(str(header))
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and field in ("external_id", "name")
        ):
            value = str(int(value)) if float(value).is_integer() else str(value)
        if isinstance(value, str) and field in _VALUES:
            low = unicodedata.normalize("NFKC", value).strip().lower()
            value = _VALUES[field].get(low, low.replace(" ", "_"))
        out[field] = value
    return out, ignored


def _upsert(
    session: Session, caller: Caller, fields: dict[str, Any], hub: ChangeHub | None
) -> tuple[str, int]:
    ext = fields.get("external_id")
    existing = None
    if ext is not None:
        stmt = select(Enterprise).where(Enterprise.tenant_id == caller.tenant, Enterprise.external_id == ext)
        existing = session.exec(stmt).first()
    if existing is None:
        row = records.create_enterprise(
            session,
            caller=caller,
            data=EnterpriseCreate.model_validate(fields),
            hub=hub,
            tier_source="import",
        )
        return "created", row.id or 0
    before = existing.updated_at
    row = records.update_enterprise(
        session,
        caller=caller,
        id=existing.id or 0,
        data=EnterpriseUpdate.model_validate({k: v for k, v in fields.items() if k != "external_id"}),
        hub=hub,
        tier_source="import",
    )
    return ("updated" if row.updated_at != before else "unchanged"), row.id or 0


def import_enterprises(
    session: Session,
    *,
    caller: Caller,
    data: bytes,
    settings: Settings,
    tier: str | None = None,
    filename: str | None = None,
    content_type: str | None = None,
    encoding: str | None = None,
    dry_run: bool = False,
    hub: ChangeHub | None = None,
) -> ImportReport:
    """Each row in its own transaction: a rejected row ("field: message") never stops the others."""
    if len(data) > settings.max_import_bytes:
        raise PayloadTooLarge(f"the file is {len(data):,} bytes; the limit is {settings.max_import_bytes:,}")
    fmt = detect_format(data, filename=filename, content_type=content_type)
    parsed = read_table(
        data, fmt, max_rows=settings.max_import_rows, max_bytes=settings.max_import_bytes, encoding=encoding
    )
    if parsed.columns and "name" not in {HEADERS.get(header_key(c)) for c in parsed.columns}:
        raise ValidationFailed("no column maps to name (企业名称/名称/name); see docs/park-office.md")
    report = ImportReport(format=parsed.format, encoding=parsed.encoding, dry_run=dry_run)
    ignored: dict[str, None] = {}
    for n, raw in parsed.records:
        if isinstance(raw, str):
            report.add(RowOutcome(row=n, kind="enterprise", status="rejected", reason=raw))
            continue
        fields, skipped = _row(raw)
        ignored.update(dict.fromkeys(skipped))
        if tier is not None:
            fields.setdefault("tier", tier)
        ext = fields.get("external_id")
        try:
            EnterpriseCreate.model_validate(fields)
            status, rid = ("created", None) if dry_run else _upsert(session, caller, fields, hub)
        except ValidationError as exc:
            session.rollback()
            reason = invalid_input(exc.errors(), whole="row").detail
            report.add(
                RowOutcome(row=n, external_id=ext, kind="enterprise", status="rejected", reason=reason)
            )
            continue
        except MatcherError as exc:
            session.rollback()
            report.add(
                RowOutcome(row=n, external_id=ext, kind="enterprise", status="rejected", reason=exc.detail)
            )
            continue
        report.add(RowOutcome(row=n, external_id=ext, kind="enterprise", status=status, id=rid))  # type: ignore[arg-type]
    report.ignored_columns = list(ignored)
    if not dry_run:
        report.seq = written_seq(session)
    logger.info("enterprise import into %s: %s", caller.tenant, report.totals.model_dump())
    return report
