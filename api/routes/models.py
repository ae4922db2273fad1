"""Trained models: list the registry, and (admins) activate a version or roll back, swapping the live ranker."""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import AdminDep, CallerDep, StateDep
from matcher.ranker import TransparentRanker
from training.registry import ModelRegistry

router = APIRouter(tags=["models"])
_swap = threading.Lock()  # one activation at a time; serving never waits on it


class ModelPublic(BaseModel):
    id: str
    kind: str
    status: str
    created_at: str | None = None
    data: dict[str, Any] = {}
    params: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    ci: dict[str, Any] = {}
    library_versions: dict[str, str] = {}


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int
    active: str | None
    serving: str | None


class SwitchPublic(BaseModel):
    active: str | None
    serving: str | None


def _public(v) -> ModelPublic:
    m = v.manifest
    return ModelPublic(
        id=v.id,
        kind=str(m.get("kind", "")),
        status=v.status,
        created_at=m.get("created_at"),
        data=m.get("data") or {},
        params=m.get("params") or {},
        metrics=m.get("metrics") or {},
        ci=m.get("ci") or {},
        library_versions=m.get("library_versions") or {},
    )


def _serving(state) -> str | None:
    return None if state.matcher is None else str(state.matcher.ranker.version)


@router.get("/models", response_model=ModelsPublic)
def list_models(state: StateDep, caller: CallerDep) -> ModelsPublic:
    """Every registered model with its manifest; which one is active and which ranker serves now."""
    reg = ModelRegistry.for_settings(state.settings)
    data = [_public(v) for v in reversed(reg.list())]
    return ModelsPublic(data=data, count=len(data), active=reg.active_id(), serving=_serving(state))


@router.post("/models/rollback", response_model=SwitchPublic)
def rollback(state: StateDep, caller: AdminDep) -> SwitchPublic:
    """Re-activate the previous model (or the transparent default when there is none)."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        back = reg.rollback()
        ranker = TransparentRanker() if back is None else reg.load(back.id)
        if state.matcher is not None:
            state.matcher.ranker = ranker
    return SwitchPublic(active=None if back is None else back.id, serving=_serving(state))


@router.post("/models/{model_id}/activate", response_model=SwitchPublic)
def activate(model_id: str, state: StateDep, caller: AdminDep) -> SwitchPublic:
    """Make a registered ranker the live one; a corrupt artefact is refused (422) and nothing changes."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        v = reg.activate(model_id)  # loads and checks the artefact before switching anything
        if v.kind == "ranker" and state.matcher is not None:
            # one attribute assignment: requests in flight finish with the ranker they already read
            state.matcher.ranker = reg.load(model_id)
    return SwitchPublic(active=v.id, serving=_serving(state))
