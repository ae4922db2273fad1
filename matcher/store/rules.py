"""The write rules every store write follows, one API body or an imported row alike: NULs, language, details.

Who may write is domain/permissions.py's matrix. Each rule here raises the core's ValidationFailed with the field
at fault, so a rejected CSV row and a refused request body read the same."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from embeddings.text import has_cjk
from matcher.domain.schemas import (
    DETAILS_MODELS,
    FundCreate,
    IncubatorCreate,
    ResultCreate,
    ScenarioCreate,
    provider_of,
)
from matcher.domain.tables import Enterprise, Need, Resource, utcnow
from matcher.errors import Conflict, invalid, invalid_input

ResourceCreateModel = ResultCreate | ScenarioCreate | FundCreate | IncubatorCreate
Row = Enterprise | Need | Resource


def reject_nul(value: Any, path: str = "") -> None:
    """PostgreSQL text cannot hold NUL characters; refuse them on both stores alike."""
    if isinstance(value, str):
        if "\x00" in value:
            raise invalid(path or "body", "contains a NUL character")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            reject_nul(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            reject_nul(v, f"{path}.{i}")


def detect_language(*texts: str | None) -> str:
    """zh when the text has any CJK character, else en."""
    return "zh" if any(has_cjk(t or "") for t in texts) else "en"


def merge_details(kind: str, stored: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Stored details with the given keys laid over (None clears one), validated again for the kind.

    Details wrong in themselves are refused (422). Details right for another kind of resource, or right alone
    but not with the stored ones (a ticket_min above the stored ticket_max), conflict with the record's current
    state (409): the same body is taken by another record."""
    try:
        model = DETAILS_MODELS[kind].model_validate({**stored, **given})
    except ValidationError as exc:
        refused = invalid_input(exc.errors(), prefix="details")
        if any(_valid(details_model, given) for details_model in DETAILS_MODELS.values()):
            raise Conflict(
                f"the details do not fit this {kind} resource as stored: {refused.detail}",
                errors=refused.errors,
            ) from None
        raise refused from None
    return model.model_dump(mode="json", exclude_none=True)


def _valid(model: type[BaseModel], values: Mapping[str, Any]) -> bool:
    try:
        model.model_validate(values)
    except ValidationError:
        return False
    return True


def new_resource(data: ResourceCreateModel, tenant: str, created_by: int | None = None) -> Resource:
    """A resource row from a create body: NULs refused, language detected when absent, provider from details."""
    fields = data.model_dump(exclude={"kind", "details"})
    details = data.details.model_dump(mode="json", exclude_none=True)
    reject_nul({**fields, "details": details})
    fields["language"] = fields["language"] or detect_language(fields["title"], fields["description"])
    return Resource(
        **fields,
        kind=data.kind,
        details=details,
        provider=provider_of(data.kind, details),
        tenant_id=tenant,
        created_by=created_by,
    )


# ---------------------------------------------------------------- updates


def _merge_resource_details(row: Resource, changes: dict[str, Any]) -> None:
    """`details` given: merged with the stored details and re-validated for the kind; the provider follows."""
    if changes.get("details") is None:
        return
    changes["details"] = merge_details(row.kind, row.details, changes["details"])
    changes["provider"] = provider_of(row.kind, changes["details"])


@dataclass(frozen=True)
class UpdateRules:
    """How one table takes a set of changes."""

    not_null: frozenset[str]  # columns that may not be set to null
    lists: tuple[str, ...] = ()  # list columns that become empty when set to null
    language_from: tuple[str, ...] = ()  # the fields a language set to null is detected from again
    details: bool = False  # `details` is merged with the stored details (see _merge_resource_details)


UPDATE_RULES: dict[type[Row], UpdateRules] = {
    Resource: UpdateRules(
        frozenset({"title", "description", "status", "visibility", "details"}),
        language_from=("title", "description"),
        details=True,
    ),
    Enterprise: UpdateRules(
        frozenset({"name", "description", "digest_frequency", "visibility"}),
        lists=("digest_kinds",),
        language_from=("name", "description"),
    ),
    Need: UpdateRules(frozenset({"title", "description", "status", "visibility"}), lists=("kinds",)),
}


def normalize_changes(row: Row, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes as the row's table takes them (see UpdateRules); NULs refused."""
    rules = UPDATE_RULES[type(row)]
    reject_nul(changes)
    for name in rules.lists:
        if name in changes and changes[name] is None:
            changes[name] = []
    if rules.details:
        _merge_resource_details(row, changes)  # type: ignore[arg-type]
    if rules.language_from and "language" in changes and changes["language"] is None:
        changes["language"] = detect_language(
            *(changes.get(name, getattr(row, name)) for name in rules.language_from)
        )
    return changes


def differences(row: Row, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes that would alter the row; a null for a not-null column is refused."""
    not_null = UPDATE_RULES[type(row)].not_null
    for name, value in changes.items():
        if value is None and name in not_null:
            raise invalid(name, "may not be null", "null_not_allowed")
    return {name: value for name, value in changes.items() if getattr(row, name) != value}


def apply_changes(row: Row, changes: Mapping[str, Any]) -> bool:
    """Set what differs and stamp updated_at; whether anything changed."""
    diff = differences(row, changes)
    for name, value in diff.items():
        setattr(row, name, value)
    if diff:
        row.updated_at = utcnow()
    return bool(diff)
