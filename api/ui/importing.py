"""Importing resources from a CSV, XLSX or JSON Lines file, as POST /v1/resources:import does, with the
per-row report shown as a table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep
from api.ui.auth import CsrfDep, SignedDep, may
from api.ui.render import page
from matcher.domain.permissions import authorize
from matcher.domain.schemas import RESOURCE_KINDS
from matcher.errors import MatcherError, PayloadTooLarge
from matcher.ingest.importer import import_file

router = APIRouter()
_CHUNK = 1 << 20


@router.get("/import")
def import_page(request: Request, signed: SignedDep) -> Response:
    ctx = {
        "kinds": RESOURCE_KINDS,
        "report": None,
        "error": None,
        "can_import": may(signed.caller, "create", "import"),
    }
    return page(request, "import.html", ctx)


@router.post("/import")
async def import_upload(
    request: Request,
    state: StateDep,
    signed: CsrfDep,
    file: UploadFile,
    kind: Annotated[str, Form(max_length=20)] = "",
    dry_run: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    caller = signed.caller
    authorize(caller, "create", "import", owner_tenant=caller.tenant)
    limit = state.settings.max_import_bytes
    parts, size = [], 0
    while chunk := await file.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the file is larger than the import limit of {limit:,} bytes")
        parts.append(chunk)
    data = b"".join(parts)

    def run():
        with Session(state.db, expire_on_commit=False) as session:
            return import_file(
                session,
                caller=caller,
                data=data,
                settings=state.settings,
                hub=state.hub,
                filename=file.filename,
                content_type=file.content_type,
                kind=kind or None,
                dry_run=dry_run == "1",
            )

    ctx = {
        "kinds": RESOURCE_KINDS,
        "report": None,
        "error": None,
        "can_import": True,
        "kind": kind,
        "dry_run": dry_run == "1",
    }
    status = 200
    try:
        if not data.strip():
            raise MatcherError("the file is empty: expected a header row and at least one record")
        ctx["report"] = await run_in_threadpool(run)
    except MatcherError as exc:
        if exc.status in (403, 404) or exc.status >= 500:
            raise
        ctx["error"], status = exc.detail, exc.status
    return page(request, "import.html", ctx, status=status)
