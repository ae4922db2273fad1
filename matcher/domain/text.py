"""Value types of the API schemas (single lines, e-mail addresses, ISO dates, integers), with JSON schemas
that say what their validators accept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import BeforeValidator, EmailStr, GetJsonSchemaHandler, StringConstraints, TypeAdapter
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from matcher.domain.spellings import any_case

SINGLE_LINE = r"^[^\r\n]*$"
# what is left after stripping must not be empty: at least one character that is not white space
NOT_BLANK_LINE = r"^[^\r\n]*\S[^\r\n]*$"


def _single_line(value: Any) -> Any:
    """Names, titles, addresses go into mail headers: a CR or LF is refused (not stripped) with a 422."""
    if isinstance(value, str) and ("\r" in value or "\n" in value):
        raise ValueError("must be a single line (no CR or LF characters)")
    return value


@dataclass(frozen=True)
class SchemaPattern:
    """Puts `pattern` in the field's JSON schema: pydantic leaves a constraint's pattern out of the schema of a
    type that also has a BeforeValidator, so the document would accept the CR/LF the validator refuses."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


@dataclass(frozen=True)
class SchemaOf:
    """Gives a field the JSON schema of another type: one whose values are checked later, with what only the
    store knows (a PATCH's details, validated for the stored record's kind), still documented as they must be."""

    documented: Any

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(TypeAdapter(self.documented).core_schema)


_OneLine = BeforeValidator(_single_line)
Title = Annotated[
    str,
    _OneLine,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=SINGLE_LINE),
    SchemaPattern(NOT_BLANK_LINE),
]
ShortText = Annotated[
    str,
    _OneLine,
    StringConstraints(strip_whitespace=True, max_length=300, pattern=SINGLE_LINE),
    SchemaPattern(SINGLE_LINE),
]
ExternalId = Annotated[
    str,
    _OneLine,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=SINGLE_LINE),
    SchemaPattern(NOT_BLANK_LINE),
]


# the validator refuses addresses at special-use domains (x@host.test, x@localhost) as undeliverable
_SPECIAL_USE = "|".join(any_case(name) for name in SPECIAL_USE_DOMAIN_NAMES)
DELIVERABLE_EMAIL = rf"^(?![^@]*@(?:[^@]*\.)?(?:{_SPECIAL_USE})\.?$)[^\r\n]*$"
Email = Annotated[EmailStr, _OneLine, SchemaPattern(DELIVERABLE_EMAIL)]


def _date_text(value: Any) -> Any:
    """A date in a body is ISO text, as the document says: a JSON number would be read as seconds since 1970."""
    if isinstance(value, int | float):
        raise ValueError("expected an ISO date (YYYY-MM-DD), not a number")
    return value


IsoDate = Annotated[date, BeforeValidator(_date_text)]


def _number(value: Any) -> Any:
    """An integer in a body is a JSON number: true or "3" is not one (5.0 is, as JSON Schema counts integers)."""
    if isinstance(value, bool | str):
        raise ValueError("expected a whole number, not text or a boolean")
    return value


# put after an integer's bounds (Annotated[int, Field(ge=1), NUMBER_ONLY]): put before them, it makes pydantic
# write them into the JSON schema as ge/le, which JSON Schema does not know
NUMBER_ONLY = BeforeValidator(_number)
