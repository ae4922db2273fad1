"""Record forms: which fields an enterprise, a need or a resource (per kind) has, how each is shown, and how a
posted form becomes the body the API validates (the same pydantic models, so the same rules and messages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from matcher.domain.taxonomy import default_taxonomy
from matcher.errors import MatcherError, invalid_input

# label per field, Chinese and English
LABELS: dict[str, tuple[str, str]] = {
    "name": ("名称", "Name"),
    "title": ("标题", "Title"),
    "description": ("描述", "Description"),
    "industries": ("行业（逗号分隔）", "Industries (comma-separated)"),
    "region": ("地区", "Region"),
    "stage": ("阶段", "Stage"),
    "tier": ("层级", "Tier"),
    "size": ("规模", "Size"),
    "email": ("联系邮箱", "Contact email"),
    "digest_frequency": ("周报频率", "Digest frequency"),
    "digest_kinds": ("周报资源类型", "Kinds in the digest"),
    "language": ("语言", "Language"),
    "visibility": ("可见性", "Visibility"),
    "external_id": ("外部编号", "External id"),
    "status": ("状态", "Status"),
    "kinds": ("所需资源类型", "Kinds sought"),
    "amount": ("金额（元）", "Amount (CNY)"),
    "deadline": ("截止日期", "Deadline"),
    "trl_min": ("最低技术成熟度", "Lowest TRL"),
    "valid_until": ("有效期至", "Valid until"),
    "holder": ("持有方", "Holder"),
    "trl": ("技术成熟度（1-9）", "TRL (1-9)"),
    "ip_status": ("知识产权状态", "IP status"),
    "patents": ("专利（逗号分隔）", "Patents (comma-separated)"),
    "transfer_modes": ("转化方式", "Transfer modes"),
    "price": ("价格（元）", "Price (CNY)"),
    "owner": ("场景方", "Owner"),
    "location": ("地点", "Location"),
    "budget": ("预算（元）", "Budget (CNY)"),
    "validation_window": ("验证周期", "Validation window"),
    "eligibility": ("申报条件", "Eligibility"),
    "manager": ("管理人", "Manager"),
    "stages": ("投资阶段", "Stages"),
    "ticket_min": ("最低单笔投资（元）", "Smallest ticket (CNY)"),
    "ticket_max": ("最高单笔投资（元）", "Largest ticket (CNY)"),
    "sectors": ("投资领域（逗号分隔）", "Sectors (comma-separated)"),
    "park_affiliated": ("园区关联基金", "Park-affiliated"),
    "operator": ("运营方", "Operator"),
    "facilities": ("设施（逗号分隔）", "Facilities (comma-separated)"),
    "capacity": ("容量（家）", "Capacity (companies)"),
    "tracks": ("方向（逗号分隔）", "Tracks (comma-separated)"),
    "admission": ("入驻条件", "Admission"),
    "enterprise_id": ("所属企业", "Enterprise"),
}
# option label per value, Chinese and English
OPTIONS: dict[str, tuple[str, str]] = {
    "seed": ("种子期", "seed"),
    "startup": ("初创期", "start-up"),
    "growth": ("成长期", "growth"),
    "mature": ("成熟期", "mature"),
    "prospect": ("潜在", "prospect"),
    "incubating": ("在孵", "incubating"),
    "key_account": ("重点", "key account"),
    "micro": ("微型", "micro"),
    "small": ("小型", "small"),
    "medium": ("中型", "medium"),
    "large": ("大型", "large"),
    "weekly": ("每周", "weekly"),
    "biweekly": ("每两周", "every two weeks"),
    "off": ("不发送", "off"),
    "zh": ("中文", "Chinese"),
    "en": ("英文", "English"),
    "public": ("公开", "public"),
    "private": ("仅本园区", "private"),
    "active": ("有效", "active"),
    "paused": ("暂停", "paused"),
    "closed": ("关闭", "closed"),
    "open": ("开放", "open"),
    "matched": ("已匹配", "matched"),
    "result": ("科技成果", "research result"),
    "scenario": ("应用场景", "application scenario"),
    "fund": ("基金", "fund"),
    "incubator": ("孵化器", "incubator"),
    "transfer": ("转让", "transfer"),
    "license": ("许可", "licence"),
    "equity": ("作价入股", "equity"),
    "co-development": ("合作开发", "co-development"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "": ("未填", "not set"),
}
KINDS = ("result", "scenario", "fund", "incubator")
STAGES = ("seed", "startup", "growth", "mature")


@dataclass(frozen=True)
class Field:
    name: str
    control: str = "text"  # text | textarea | select | multi | number | date | email | list
    options: tuple[str, ...] = ()
    required: bool = False
    detail: bool = False  # a field of a resource's `details`

    @property
    def key(self) -> str:
        return f"details.{self.name}" if self.detail else self.name


ENTERPRISE = (
    Field("name", required=True),
    Field("description", "textarea"),
    Field("industries", "list"),
    Field("region"),
    Field("stage", "select", ("",) + STAGES),
    Field("tier", "select", ("", "prospect", "incubating", "key_account")),
    Field("size", "select", ("", "micro", "small", "medium", "large")),
    Field("email", "email"),
    Field("digest_frequency", "select", ("weekly", "biweekly", "off")),
    Field("digest_kinds", "multi", KINDS),
    Field("language", "select", ("zh", "en")),
    Field("visibility", "select", ("public", "private")),
    Field("external_id"),
)
NEED = (
    Field("title", required=True),
    Field("description", "textarea"),
    Field("kinds", "multi", KINDS),
    Field("industries", "list"),
    Field("amount", "number"),
    Field("region"),
    Field("deadline", "date"),
    Field("trl_min", "number"),
    Field("status", "select", ("open", "matched", "closed")),
    Field("visibility", "select", ("public", "private")),
)
RESOURCE = (
    Field("title", required=True),
    Field("description", "textarea"),
    Field("industries", "list"),
    Field("region"),
    Field("valid_until", "date"),
    Field("language", "select", ("", "zh", "en")),
    Field("status", "select", ("active", "paused", "closed")),
    Field("visibility", "select", ("public", "private")),
    Field("external_id"),
)
DETAILS: dict[str, tuple[Field, ...]] = {
    "result": (
        Field("holder", detail=True),
        Field("trl", "number", detail=True),
        Field("ip_status", detail=True),
        Field("patents", "list", detail=True),
        Field("transfer_modes", "multi", ("transfer", "license", "equity", "co-development"), detail=True),
        Field("price", "number", detail=True),
    ),
    "scenario": (
        Field("owner", detail=True),
        Field("location", detail=True),
        Field("budget", "number", detail=True),
        Field("deadline", "date", detail=True),
        Field("validation_window", detail=True),
        Field("eligibility", "textarea", detail=True),
    ),
    "fund": (
        Field("manager", detail=True),
        Field("stages", "multi", STAGES, detail=True),
        Field("ticket_min", "number", detail=True),
        Field("ticket_max", "number", detail=True),
        Field("sectors", "list", detail=True),
        Field("park_affiliated", "select", ("", "yes", "no"), detail=True),
    ),
    "incubator": (
        Field("operator", detail=True),
        Field("facilities", "list", detail=True),
        Field("capacity", "number", detail=True),
        Field("tracks", "list", detail=True),
        Field("admission", "textarea", detail=True),
        Field("location", detail=True),
    ),
}
# fields whose column holds no null: an empty box means "" (description) or "unchanged" (the others)
NOT_NULL = {
    "name",
    "title",
    "description",
    "status",
    "visibility",
    "digest_frequency",
    "language",
    "kinds",
    "digest_kinds",
    "industries",
}


def label(name: str, lang: str) -> str:
    zh, en = LABELS.get(name, (name, name))
    return zh if lang == "zh" else en


def option_label(value: str, lang: str) -> str:
    zh, en = OPTIONS.get(value, (value, value))
    return zh if lang == "zh" else en


@dataclass
class Filled:
    """A form as shown: the values typed (text), and the problems per field."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    summary: str | None = None


def shown_value(value: Any, f: Field) -> Any:
    """A stored value as the form shows it."""
    if value is None:
        return [] if f.control == "multi" else ""
    if f.control == "multi":
        return list(value)
    if f.control == "list":
        return ", ".join(str(v) for v in value)
    if f.name == "park_affiliated":
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


TAGGED = ("industries", "sectors")  # taxonomy tags: shown by their names in the reader's language


def from_row(row: Any, fields: tuple[Field, ...], lang: str = "zh") -> dict[str, Any]:
    details = getattr(row, "details", None) or {}
    out = {}
    for f in fields:
        value = details.get(f.name) if f.detail else getattr(row, f.name, None)
        if f.name in TAGGED and value:
            tax = default_taxonomy()
            value = [tax.label(t, lang) for t in value]
        out[f.key] = shown_value(value, f)
    return out


def read(form: FormData, fields: tuple[Field, ...]) -> dict[str, Any]:
    """The posted values as typed (for showing again)."""
    out: dict[str, Any] = {}
    for f in fields:
        if f.control == "multi":
            out[f.key] = [v for v in form.getlist(f.key) if isinstance(v, str) and v in f.options]
        else:
            v = form.get(f.key)
            out[f.key] = v.replace("\r\n", "\n") if isinstance(v, str) else ""
    return out


def body(values: dict[str, Any], fields: tuple[Field, ...], *, update: bool) -> dict[str, Any]:
    """The request body the API model validates. Empty boxes: left out on a create; on an update, null for a
    field that may be null, "" for a description, left out for the rest."""
    out: dict[str, Any] = {}
    details: dict[str, Any] = {}
    for f in fields:
        raw = values.get(f.key)
        target = details if f.detail else out
        if f.control == "multi":
            target[f.name] = raw or []
            continue
        text = (raw or "").strip() if f.control != "textarea" else (raw or "")
        if f.name == "park_affiliated":
            target[f.name] = {"yes": True, "no": False}.get(text)
            continue
        if text.strip() == "":
            if f.required:  # refused by the model with the field's own message, never left as it was
                target[f.name] = ""
            elif f.detail or (update and f.name not in NOT_NULL):
                target[f.name] = None
            elif f.name == "description":
                target[f.name] = ""
            elif f.control == "list" and f.name in NOT_NULL:
                target[f.name] = []
            continue
        target[f.name] = _as_number(text) if f.control == "number" else text
    if any(f.detail for f in fields):
        out["details"] = {k: v for k, v in details.items() if v is not None} if not update else details
    return out


def _as_number(text: str) -> Any:
    """A typed number ("20,000,000" -> 20000000) as the API's JSON would carry it; text that is no number stays
    text, for the model to refuse with the field's own message."""
    plain = text.replace(",", "").replace("，", "").strip()
    for kind in (int, float):
        try:
            return kind(plain)
        except ValueError:
            continue
    return plain


def validate(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    """The API model's validation; its errors as the API words them (ValidationFailed)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc.errors()) from None


def problems(exc: MatcherError) -> Filled:
    """A refusal of the model or the store (422, 409) as messages per field, for the form."""
    filled = Filled(summary=exc.detail)
    for e in exc.errors or []:
        parts = str(e.get("field", "")).removeprefix("body.").split(".")
        while parts and parts[-1].isdigit():  # industries.0 is the industries box
            parts.pop()
        filled.errors.setdefault(".".join(parts), str(e.get("message", "")))
    return filled
