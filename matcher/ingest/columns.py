"""Column mapping for imports: which header (Chinese or English) fills which resource field, and the
spreadsheet-friendly value conversions (金额 in 万/亿, dates like 2025年3月1日, TRL 6级, 是/否)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from matcher.errors import ValidationFailed, invalid
from matcher.ingest import bounded_json

# synonyms for a resource kind, in a `kind`/`类型` column or the --kind option
# fmt: off
KIND_SYNONYMS: dict[str, str] = {
    "result": "result", "results": "result", "科技成果": "result", "成果": "result", "技术成果": "result",
    "research result": "result",
    "scenario": "scenario", "scenarios": "scenario", "应用场景": "scenario", "场景": "scenario",
    "fund": "fund", "funds": "fund", "基金": "fund", "投资基金": "fund", "投资机构": "fund",
    "incubator": "incubator", "incubators": "incubator", "孵化器": "incubator", "加速器": "incubator",
    "概念验证": "incubator", "概念验证中心": "incubator", "共享实验室": "incubator", "孵化平台": "incubator",
    "平台": "incubator", "accelerator": "incubator",
}

# target <- headers ("|"-separated; compared without case, spaces, "_" or "-"). A target is a top-level
# field, "details.<name>", or "@provider" (the kind's own provider field: holder, owner, manager, operator)
_COLUMN_SYNONYMS: dict[str, str] = {
    "kind": "kind|type|类型|类别|资源类型",
    "title": "title|name|标题|名称|题目|成果名称|项目名称|场景名称|基金名称|平台名称",
    "description": "description|abstract|summary|简介|描述|摘要|内容|详情|说明|成果简介|场景描述|项目简介",
    "industries": "industries|industry|tags|行业|领域|产业|行业领域|技术领域|所属行业|所属领域|标签",
    "region": "region|city|地区|区域|所在地|所在地区|城市",
    "valid_until": "valid_until|expires|有效期|有效期至|有效截止",
    "external_id": "external_id|ext_id|code|编号|外部编号|项目编号|成果编号|场景编号",
    "status": "status|状态",
    "visibility": "visibility|可见性|公开范围",
    "language": "language|lang|语言",
    "@provider": "provider|提供方|机构|单位",
    "details.holder": "holder|持有人|完成单位|成果持有人|权利人|所属单位|研发单位",
    "details.trl": "trl|成熟度|技术成熟度|技术就绪度",
    "details.ip_status": "ip_status|知识产权|知识产权状态|专利状态",
    "details.patents": "patents|patent|专利|专利号",
    "details.transfer_modes": "transfer_modes|transfer_mode|转化方式|合作方式|交易方式",
    "details.price": "price|价格|报价|转让价格|意向价格",
    "details.owner": "owner|发布方|场景方|发布单位|场景发布方",
    "details.location": "location|address|地点|地址|场景地点",
    "details.budget": "budget|预算|预算金额",
    "details.deadline": "deadline|截止日期|申报截止|报名截止|截止时间",
    "details.validation_window": "validation_window|验证周期|验证窗口|验证期",
    "details.eligibility": "eligibility|申报条件|资格要求|申报要求",
    "details.manager": "manager|管理人|基金管理人|管理机构",
    "details.stages": "stages|stage|投资阶段|阶段",
    "details.ticket_min": "ticket_min|最低投资额|单笔最低|最小投资额",
    "details.ticket_max": "ticket_max|最高投资额|单笔最高|最大投资额",
    "details.sectors": "sectors|投资领域|关注领域|投资方向",
    "details.park_affiliated": "park_affiliated|园区基金|园区合作",
    "details.operator": "operator|运营方|运营单位|运营机构",
    "details.facilities": "facilities|设施|设备设施|平台设施|共享设施",
    "details.capacity": "capacity|seats|容量|工位|工位数|可容纳",
    "details.tracks": "tracks|方向|孵化方向|赛道",
    "details.admission": "admission|入驻条件|入孵条件",
}

_TOP_FIELDS = {"kind", "title", "description", "industries", "region", "valid_until", "external_id", "status",
               "visibility", "language"}
_MONEY = {"price", "budget", "ticket_min", "ticket_max"}
_DATES = {"valid_until", "deadline"}
_STATUS = {"有效": "active", "上架": "active", "启用": "active", "进行中": "active", "暂停": "paused",
           "关闭": "closed", "下架": "closed", "已结束": "closed", "结束": "closed"}
_VISIBILITY = {"公开": "public", "私有": "private", "不公开": "private", "内部": "private"}
_LANGUAGE = {"中文": "zh", "chinese": "zh", "英文": "en", "english": "en"}
_BOOLS = {"是": True, "否": False, "有": True, "无": False, "true": True, "false": False, "t": True, "f": False,
          "yes": True, "no": False, "y": True, "n": False, "on": True, "off": False, "1": True, "0": False}
_UNIT = re.compile(r"^(.*?)\s*[（(]\s*(万元|万|亿元|亿|元|cny|rmb)\s*[)）]\s*$", re.IGNORECASE)
_UNIT_SCALE = {"万元": 1e4, "万": 1e4, "亿元": 1e8, "亿": 1e8, "元": 1.0, "cny": 1.0, "rmb": 1.0}
# fmt: on


def header_key(header: str) -> str:
    """How headers are compared: NFKC, lower case, no spaces, underscores or hyphens."""
    key = unicodedata.normalize("NFKC", str(header)).strip().lower().lstrip("\ufeff")
    return re.sub(r"[\s_\-]+", "", key)


# header key -> target, built from the table above
DEFAULT_COLUMNS: dict[str, str] = {
    header_key(name): target for target, names in _COLUMN_SYNONYMS.items() for name in names.split("|")
}


# what a mapping may name: a field, a detail (details.<name>) or the provider; the API's document says the same
TARGET_PATTERN = rf"^(?:{'|'.join(sorted(_TOP_FIELDS))}|@provider|details\.[A-Za-z_][A-Za-z0-9_]*)$"
_TARGET = re.compile(TARGET_PATTERN)


def _check_target(target: str) -> bool:
    return _TARGET.fullmatch(target) is not None


def load_mapping(source: str | Path | Mapping[str, Any]) -> dict[str, str | None]:
    """A custom column mapping: {"header": "target" | null}; JSON file path, JSON text or a dict.

    Targets are field names (title, region ...), "details.<name>" or "@provider"; null ignores the column."""
    if isinstance(source, Mapping):
        raw: Any = source
    else:
        text = Path(source).read_text(encoding="utf-8") if isinstance(source, Path) else str(source)
        try:
            raw = bounded_json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"mapping: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        except bounded_json.TooDeep as exc:
            raise ValidationFailed(f"mapping: {exc}") from None
    if isinstance(raw, Mapping) and isinstance(raw.get("columns"), Mapping):
        raw = raw["columns"]
    if not isinstance(raw, Mapping):
        raise ValidationFailed('mapping: expected a JSON object {"header": "field"}')
    out: dict[str, str | None] = {}
    for header, target in raw.items():
        if target in (None, ""):
            out[header_key(header)] = None
            continue
        if not isinstance(target, str) or not _check_target(target.strip()):
            raise ValidationFailed(
                f"mapping: unknown target {target!r} for column {header!r}; use a field name "
                "(title, description, industries, region, valid_until, external_id, kind, status, visibility, "
                "language), 'details.<name>' or '@provider'"
            )
        out[header_key(header)] = target.strip()
    return out


@dataclass
class Column:
    name: str
    target: str | None
    scale: float = 1.0


def resolve_columns(headers: Iterable[str], mapping: Mapping[str, str | None] | None = None) -> list[Column]:
    """Each header's target (None = ignored), custom mapping first, then the defaults, then `details.x`."""
    custom = dict(mapping or {})
    out: list[Column] = []
    for header in headers:
        name = str(header) if header is not None else ""
        key = header_key(name)
        scale = 1.0
        m = _UNIT.match(unicodedata.normalize("NFKC", name).strip())
        if key not in custom and key not in DEFAULT_COLUMNS and m:
            key, scale = header_key(m.group(1)), _UNIT_SCALE[m.group(2).lower()]
        if key in custom:
            target = custom[key]
        elif key in DEFAULT_COLUMNS:
            target = DEFAULT_COLUMNS[key]
        elif key.startswith("details.") and len(key) > 8:
            target = "details." + name.strip().split(".", 1)[1].strip()
        elif key == "details":
            target = "details"
        else:
            target = None
        out.append(Column(name, target, scale))
    return out


# ---------------------------------------------------------------------------------------------- values


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _money(value: Any, scale: float) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value * scale
    if not isinstance(value, str):
        return value
    s = (
        unicodedata.normalize("NFKC", value)
        .strip()
        .lower()
        .replace(",", "")
        .replace("¥", "")
        .replace("￥", "")
    )
    if s in ("面议", "negotiable", "n/a", "-"):
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(亿元|亿|万元|万|元|cny|rmb|k|m)?", s)
    if not m:
        return value
    unit = {"k": 1e3, "m": 1e6}.get(m.group(2) or "", _UNIT_SCALE.get(m.group(2) or "", scale))
    return float(m.group(1)) * unit


def _date(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date()
    if not isinstance(value, str):
        return value
    s = unicodedata.normalize("NFKC", value).strip()
    m = re.fullmatch(
        r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ t]\d{1,2}:\d{2}(?::\d{2})?)?", s
    )
    if m:
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return value
    return value


def _int_like(value: Any, pattern: str) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(pattern, unicodedata.normalize("NFKC", value).strip().lower())
        if m:
            return int(m.group(1))
    return value


def coerce(target: str, value: Any, scale: float) -> Any:
    """Spreadsheet-friendly conversions; anything not understood is left for validation to report.

    Raises ValidationFailed for a JSON list cell nested deeper than bounded_json.MAX_DEPTH."""
    name = target.split(".", 1)[1] if target.startswith("details.") else target
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            try:
                parsed = bounded_json.loads(stripped)
                if isinstance(parsed, list):
                    return parsed
            except json.JSONDecodeError:
                pass
            except bounded_json.TooDeep as exc:
                raise invalid(target, str(exc)) from None
    if name in _MONEY:
        return _money(value, scale)
    if name in _DATES:
        return _date(value)
    if name == "trl":
        return _int_like(value, r"(?:trl)?\s*[-:]?\s*(\d+)\s*级?")
    if name == "capacity":
        return _int_like(value, r"(\d+)\s*\D{0,6}")
    if name == "park_affiliated" and isinstance(value, str):
        return _BOOLS.get(value.strip().lower(), value)
    if name == "park_affiliated" and type(value) is int and value in (0, 1):
        return bool(value)
    if (
        name in ("external_id", "title", "region", "holder", "owner", "manager", "operator")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
    ):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if name == "status":
            return _STATUS.get(low, low)
        if name == "visibility":
            return _VISIBILITY.get(low, low)
        if name == "language":
            return _LANGUAGE.get(low, low)
    return value


def normalize_kind(value: Any) -> str | None:
    """The canonical kind for a name or synonym in either language, or None when unknown."""
    if not isinstance(value, str):
        return None
    key = unicodedata.normalize("NFKC", value).strip().lower()
    return KIND_SYNONYMS.get(key) or KIND_SYNONYMS.get(key.replace(" ", ""))


def map_record(
    raw: Mapping[str, Any], columns: Sequence[Column] | None = None
) -> tuple[dict[str, Any], set[str], set[str]]:
    """(record, present fields, present detail fields) from one raw row; empty values are left out of the
    record but still count as present, so an update clears them.

    Raises ValidationFailed for a JSON cell nested deeper than bounded_json.MAX_DEPTH."""
    if columns is None:
        columns = resolve_columns(raw.keys())
    record: dict[str, Any] = {}
    details: dict[str, Any] = {}
    present: set[str] = set()
    present_details: set[str] = set()
    provider: Any = None
    for col in columns:
        if col.target is None or col.name not in raw:
            continue
        value = raw[col.name]
        if col.target == "details":
            if isinstance(value, str) and value.strip():
                try:
                    value = bounded_json.loads(value)
                except json.JSONDecodeError:
                    record["details"] = value  # reported by validation
                    continue
                except bounded_json.TooDeep as exc:
                    raise invalid("details", str(exc)) from None
            if isinstance(value, Mapping):
                for k, v in value.items():
                    present_details.add(str(k))
                    if not _is_empty(v):
                        details.setdefault(str(k), coerce(f"details.{k}", v, 1.0))
            elif not _is_empty(value):
                record["details"] = value
            continue
        if col.target == "@provider":
            if not _is_empty(value) and provider is None:
                provider = value
            continue
        if col.target.startswith("details."):
            name = col.target.split(".", 1)[1]
            present_details.add(name)
            if not _is_empty(value) and name not in details:
                details[name] = coerce(col.target, value, col.scale)
            continue
        present.add(col.target)
        if not _is_empty(value) and col.target not in record:
            record[col.target] = coerce(col.target, value, col.scale)
    record["__provider__"] = provider
    record.setdefault("details", details)
    return record, present, present_details
