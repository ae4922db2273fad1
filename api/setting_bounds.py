"""Bounds a deployment's settings own (MATCHER_MAX_K, MATCHER_MAX_QUERY_CHARS): a body field or a query parameter
names the setting, and each app's OpenAPI document states that app's value, so that the document refuses what
its server refuses (the server checks the same settings per request, api/routes/match.py's check_limits)."""

from __future__ import annotations

from typing import Any

from matcher.settings import Settings

# the mark a field's JSON schema carries until the document is written: {JSON Schema keyword: setting name}
_MARK = "x-parkmatch-setting"


def setting_bound(keyword: str, setting: str) -> dict[str, Any]:
    """`json_schema_extra` for a bound a setting owns: `keyword` is a JSON Schema keyword (maximum, maxLength),
    `setting` the name of the Settings field whose value it takes."""
    if setting not in Settings.model_fields:
        raise ValueError(f"no setting {setting!r}")
    return {_MARK: {keyword: setting}}


def state_setting_bounds(openapi: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Replace every mark in the document with the keyword and the value the app's settings give."""

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, dict):
            for keyword, setting in node.pop(_MARK, {}).items():
                node[keyword] = getattr(settings, setting)
            for value in node.values():
                walk(value)

    walk(openapi)
    return openapi
