"""HTTP routers; each module exposes `router`, mounted under /v1 unless it says otherwise."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

# module names under api.routes; each must define `router` (and may define `PREFIX`, default "/v1")
ROUTER_MODULES = [
    "health",
    "enterprises",
    "needs",
    "resources",
    "imports",
    "keys",
    "feedback",
    "models",
    "stats",
    "digests",
    "match",
]


def routers() -> list[tuple[APIRouter, str]]:
    out = []
    for name in ROUTER_MODULES:
        mod = importlib.import_module(f"api.routes.{name}")
        out.append((mod.router, getattr(mod, "PREFIX", "/v1")))
    return out
