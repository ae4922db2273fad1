"""HTTP routers, mounted in this order under /v1 unless the module sets its own `PREFIX`."""

from __future__ import annotations

from fastapi import APIRouter

from api.routes import (
    admin,
    audit,
    chains,
    cultivation,
    digests,
    enterprises,
    events,
    feedback,
    health,
    imports,
    jobs,
    keys,
    match,
    metrics,
    models,
    needs,
    relay,
    resources,
    stats,
)

_MODULES = (
    health,
    metrics,
    enterprises,
    needs,
    resources,
    imports,
    jobs,
    keys,
    audit,
    feedback,
    models,
    stats,
    digests,
    match,
    events,
    chains,
    cultivation,
    relay,
    admin,
)


def routers() -> list[tuple[APIRouter, str]]:
    return [(mod.router, getattr(mod, "PREFIX", "/v1")) for mod in _MODULES]
