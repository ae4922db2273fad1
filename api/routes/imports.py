"""POST /v1/resources:import: bulk import of resources from CSV, JSON Lines or XLSX, with a per-row report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from api.deps import StateDep, permit
from api.errors import problem_response
from api.feed import SEQ_HEADER
from api.state import AppState
from matcher.domain.schemas import RESOURCE_KINDS, ResourceKind
from matcher.domain.spellings import any_case
from matcher.domain.text import SchemaPattern
from matcher.errors import PayloadTooLarge, ValidationFailed, invalid
from matcher.ingest.columns import TARGET_PATTERN, load_mapping
from matcher.ingest.importer import ImportReport, import_file
from matcher.ingest.tabular import ENCODINGS
from matcher.jobs.enqueue import enqueue
from matcher.store.keys import Caller

router = APIRouter(tags=["import"])

_CHUNK = 1 << 20
ENCODING_PATTERN = f"^(?:{'|'.join(any_case(name) for name in ENCODINGS)})$"
# `encoding` of an import: one of the encodings listed, in any case (another is refused, 422)
EncodingQuery = Annotated[
    Annotated[str, SchemaPattern(ENCODING_PATTERN)] | None,
    Query(
        max_length=40,
        description=f"force a text encoding, in any case (default: detected): {', '.join(ENCODINGS)}",
    ),
]
_FILE_SCHEMA = {"type": "string", "format": "binary"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# what the importers read, as the type of the multipart file part (a generic type such as
# application/octet-stream is read by the file's name or first bytes; a type they do not read is refused, 415)
FILE_TYPES = ("text/csv", XLSX, "application/jsonl", "application/x-ndjson", "application/json")
FILE_TYPES_TEXT = "not CSV, XLSX, JSON Lines or JSON (the file part's or the body's type)"


def import_body(file_description: str, **fields: dict[str, Any]) -> dict[str, Any]:
    """The request body of an import, for `openapi_extra`: a multipart form whose `file` part is of one of
    FILE_TYPES and whose other parts are `fields` (none other, each once), or the file itself as the body with
    its own type."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {**_FILE_SCHEMA, "description": file_description}, **fields},
                        "additionalProperties": False,
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


_OPENAPI = import_body(
    "the CSV, XLSX, JSON Lines or JSON file",
    mapping={
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
    kind={
        "type": "string",
        "enum": list(RESOURCE_KINDS),
        "description": "kind of every row (or use the query); synonyms such as 科技成果 are accepted too",
    },
)


def check_encoding(encoding: str | None) -> None:
    """An `encoding` the document does not list is refused (422), as its pattern says."""
    if encoding is not None and encoding.lower() not in ENCODINGS:
        raise invalid("encoding", f"unknown encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")


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


@dataclass
class ImportUpload:
    """An import's file as sent: its bytes, name and type, and the form's other fields (multipart only)."""

    data: bytes
    filename: str | None
    content_type: str | None
    fields: dict[str, str] = field(default_factory=dict)


def _declared_parts(form: FormData, fields: Sequence[str]) -> None:
    """A form carries `file` and `fields` only, each once, as the document says (422 naming another part)."""
    known = ("file", *fields)
    seen: set[str] = set()
    for name, _ in form.multi_items():
        if name not in known:
            raise invalid(name, f"unknown form field; an import reads {', '.join(known)}", "extra_forbidden")
        if name in seen:
            raise invalid(name, "given more than once; this field takes one value", "too_many")
        seen.add(name)


async def read_upload(request: Request, limit: int, fields: Sequence[str] = ()) -> ImportUpload:
    """The file of an import request: a multipart `file` part beside the optional text `fields`, or the raw body
    with its Content-Type. 413 over `limit` bytes, 422 when there is no file or it is empty."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + (64 << 10):  # room for multipart framing
        raise _too_large(limit)
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=len(fields) + 1) as form:
            _declared_parts(form, fields)
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ValidationFailed("file: missing; send the file in a multipart field named 'file'")
            out = ImportUpload(await _read_upload(upload, limit), upload.filename, upload.content_type)
            out.fields = {name: value for name in fields if isinstance(value := form.get(name), str)}
    else:
        out = ImportUpload(await _read_body(request, limit), None, content_type)
    if not out.data.strip():
        raise ValidationFailed("the file is empty: expected a header row and at least one record")
    return out


class JobQueued(BaseModel):
    """An import queued as a background job: follow it at `location`."""

    job: str
    state: str
    location: str


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
        202: {
            "description": "a file over MATCHER_IMPORT_ASYNC_BYTES, with a broker configured: queued as a job",
            "headers": {"Location": {"schema": {"type": "string"}, "description": "/v1/jobs/{id}"}},
            "content": {"application/json": {"schema": JobQueued.model_json_schema()}},
        },
        413: problem_response("the file is over MATCHER_MAX_IMPORT_BYTES or MATCHER_MAX_IMPORT_ROWS"),
        415: problem_response(FILE_TYPES_TEXT),
        422: problem_response("the file cannot be decoded or parsed, or an option is invalid"),
        503: problem_response("a file that runs as a job, while the task broker does not answer"),
    },
)
async def import_resources(
    request: Request,
    response: Response,
    state: StateDep,
    caller: Annotated[Caller, permit("create", "import")],
    kind: Annotated[
        ResourceKind | None,
        Query(description="kind of every row; optional when rows have a kind/类型 column"),
    ] = None,
    dry_run: Annotated[bool, Query(description="validate and report without writing")] = False,
    encoding: EncodingQuery = None,
) -> ImportReport:
    """Upsert resources by `external_id` within your tenant (rows without one are created).

    Send the file as multipart (field `file`, optional fields `mapping` and `kind`) or as the raw body with its
    Content-Type (text/csv, application/x-ndjson, application/jsonl, the XLSX type). Rows that fail validation
    are reported with `reason` ("field: message") and do not stop the others; see docs/import.md."""
    check_encoding(encoding)
    upload = await read_upload(request, state.settings.max_import_bytes, ("mapping", "kind"))
    mapping_text = upload.fields.get("mapping", "").strip()
    mapping = load_mapping(mapping_text) if mapping_text else None
    # the multipart field may name a synonym (科技成果), resolved by the importer
    field_kind = upload.fields.get("kind", "")
    file_kind = kind or (field_kind if field_kind.strip() else None)
    settings = state.settings
    if settings.broker_url and not dry_run and len(upload.data) > settings.import_async_bytes:
        options = {
            "filename": upload.filename,
            "content_type": upload.content_type,
            "kind": file_kind,
            "mapping": mapping,
            "encoding": encoding,
        }
        job = await run_in_threadpool(
            enqueue,
            settings,
            state.db,
            kind="import",
            tenant=caller.tenant,
            task="parkmatch.import_resources",
            args=[caller.tenant, caller.role, options],
            payload=upload.data,
        )
        return JSONResponse(  # type: ignore[return-value]
            JobQueued(job=job.id, state=job.state, location=f"/v1/jobs/{job.id}").model_dump(),
            status_code=202,
            headers={"Location": f"/v1/jobs/{job.id}"},
        )
    report = await run_in_threadpool(
        _run,
        state,
        caller,
        upload.data,
        filename=upload.filename,
        content_type=upload.content_type,
        kind=file_kind,
        mapping=mapping,
        encoding=encoding,
        dry_run=dry_run,
    )
    if report.seq is not None:
        response.headers[SEQ_HEADER] = str(report.seq)
    return report
