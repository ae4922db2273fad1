"""Liveness and readiness probes (no key), and the taxonomy (a /v1 call like any other: it needs a key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import CallerDep, StateDep
from api.errors import PROBLEM_RESPONSES

router = APIRouter(tags=["health"])
PREFIX = ""


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(state: StateDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with state.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001
        checks["database"] = "unavailable"
    checks["indexes"] = "ok" if state.matcher is not None and state.ready else "loading"
    body: dict = {"checks": checks}
    indexer = getattr(state.matcher, "indexer", None)
    coverage = indexer.teacher_coverage() if indexer is not None else None
    if coverage is not None:  # informative only: a record without a teacher vector is scored by the student
        body["teacher"] = coverage
    follower = getattr(state.matcher, "follower", None)
    if follower is not None and checks["database"] == "ok":
        try:
            feed = follower.status()
        except Exception:  # noqa: BLE001 - the store stopped answering between the two reads
            checks["feed"] = "unavailable"
            return JSONResponse({"status": "not ready", **body}, status_code=503)
        behind = (
            feed.lag > state.settings.ready_max_lag_seq or feed.lag_seconds > state.settings.ready_max_lag_s
        )
        checks["feed"] = "behind" if behind else "ok"
        body["feed"] = {
            "applied_seq": feed.applied,
            "head_seq": feed.head,
            "lag_entries": feed.lag,
            "lag_seconds": round(feed.lag_seconds, 3),
        }
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", **body}, status_code=200 if ok else 503)


@router.get("/v1/taxonomy", responses={status: PROBLEM_RESPONSES[status] for status in (401, 429)})
def taxonomy(state: StateDep, caller: CallerDep) -> dict:
    return {"version": 1, "tags": state.taxonomy.as_dict()}
