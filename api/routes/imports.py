"""POST /v1/resources:import: bulk import of resources from CSV, JSON Lines or XLSX, with a per-row report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.deps import StateDep, permit
from api.errors import problem_response
from api.state import AppState
from matcher.domain.schemas import RESOURCE_KINDS, ResourceKind
from matcher.domain.spellings import any_case
from matcher.domain.text import SchemaPattern
from matcher.errors import PayloadTooLarge, ValidationFailed, invalid
from matcher.ingest.columns import TARGET_PATTERN, load_mapping
from matcher.ingest.importer import ImportReport, import_file
from matcher.ingest.tabular import ENCODINGS
from matcher.store.keys import Caller

router = APIRouter(tags=["import"])

_CHUNK = 1 << 20
ENCODING_PATTERN = f"^(?:{'|'.join(any_case(name) for name in ENCODINGS)})$"
_FILE_SCHEMA = {"type": "string", "format": "binary"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# what the importer reads, as the type of the multipart file part (a generic type such as
# application/octet-stream is read by the file's name or first bytes; a type it does not read is refused, 415)
FILE_TYPES = ("text/csv", XLSX, "application/jsonl", "application/x-ndjson", "application/json")
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {**_FILE_SCHEMA, "description": "the CSV, XLSX, JSON Lines or JSON file"},
                        "mapping": {
                            "type": "object",
                            "description": 'custom column mapping {"header": "field"}, sent as JSON: a field '
                            'name, "details.<name>" or "@provider"; null or "" ignores the column',
                            "additionalProperties": {
                                "anyOf": [
                                    {"type": "string", "pattern": f"^(?:{TARGET_PATTERN[1:-1]})?$"},
                                    {"type": "null"},
                                ]
                            },
                        },
                        "kind": {
                            "type": "string",
                            "enum": list(RESOURCE_KINDS),
                            "description": "kind of every row (or use the query); synonyms such as 科技成果 "
                            "are accepted too",
                        },
                    },
                },
                "encoding": {"file": {"contentType": ", ".join(FILE_TYPES)}},
            },
            "text/csv": {"schema": {"type": "string"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "application/jsonl": {"schema": {"type": "string"}},
            XLSX: {"schema": _FILE_SCHEMA},
        },
    }
}


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the file is larger than the import limit of {limit:,} bytes (MATCHER_MAX_IMPORT_BYTES)"
    )


async def _read_upload(upload: UploadFile, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


async def _read_body(request: Request, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _run(state: AppState, caller: Caller, data: bytes, **options: object) -> ImportReport:
    with Session(state.db, expire_on_commit=False) as session:
        return import_file(
            session, caller=caller, data=data, settings=state.settings, hub=state.hub, **options
        )  # type: ignore[arg-type]


@router.post(
    "/resources:import",
    response_model=ImportReport,
    summary="Import resources from a file",
    openapi_extra=_OPENAPI,
    responses={
        413: problem_response("the file is over MATCHER_MAX_IMPORT_BYTES or MATCHER_MAX_IMPORT_ROWS"),
        415: problem_response("not CSV, XLSX, JSON Lines or JSON (the file part's or the body's type)"),
        422: problem_response("the file cannot be decoded or parsed, or an option is invalid"),
    },
)
async def import_resources(
    request: Request,
    state: StateDep,
    caller: Annotated[Caller, permit("create", "import")],
    kind: Annotated[
        ResourceKind | None,
        Query(description="kind of every row; optional when rows have a kind/类型 column"),
    ] = None,
    dry_run: Annotated[bool, Query(description="validate and report without writing")] = False,
    encoding: Annotated[
        Annotated[str, SchemaPattern(ENCODING_PATTERN)] | None,
        Query(
            max_length=40,
            description=f"force a text encoding, in any case (default: detected): {', '.join(ENCODINGS)}",
        ),
    ] = None,
) -> ImportReport:
    """Upsert resources by `external_id` within your tenant (rows without one are created).

    Send the file as multipart (field `file`, optional fields `mapping` and `kind`) or as the raw body with its
    Content-Type (text/csv, application/x-ndjson, application/jsonl, the XLSX type). Rows that fail validation
    are reported with `reason` ("field: message") and do not stop the others; see docs/import.md."""
    if encoding is not None and encoding.lower() not in ENCODINGS:
        raise invalid("encoding", f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    limit = state.settings.max_import_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + (64 << 10):  # room for multipart framing
        raise _too_large(limit)
    content_type = request.headers.get("content-type", "")
    mapping_text: str | None = None
    file_kind: str | None = (
        kind  # the multipart field may name a synonym (科技成果), resolved by the importer
    )
    if content_type.lower().startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=5) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ValidationFailed("file: missing; send the file in a multipart field named 'file'")
            data = await _read_upload(upload, limit)
            filename, part_type = upload.filename, upload.content_type
            field_mapping, field_kind = form.get("mapping"), form.get("kind")
        mapping_text = field_mapping if isinstance(field_mapping, str) and field_mapping.strip() else None
        if kind is None and isinstance(field_kind, str) and field_kind.strip():
            file_kind = field_kind
    else:
        data = await _read_body(request, limit)
        filename, part_type = None, content_type
    if not data.strip():
        raise ValidationFailed("the file is empty: expected a header row and at least one record")
    mapping = load_mapping(mapping_text) if mapping_text else None
    return await run_in_threadpool(
        _run,
        state,
        caller,
        data,
        filename=filename,
        content_type=part_type,
        kind=file_kind,
        mapping=mapping,
        encoding=encoding,
        dry_run=dry_run,
    )
