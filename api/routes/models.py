"""Trained models of the caller's tenant: list them, and (admins) activate a version, roll back or run a trial,
swapping the ranker the tenant is served. Another tenant's models do not exist here (404); the operator's
shared scope is managed from the command line (`matcher train ranker --shared`)."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import SessionDep, StateDep, permit
from api.state import AppState
from matcher.errors import NotFound
from matcher.matching.ranker import TransparentRanker
from matcher.models.follower import serve_scope
from matcher.models.registry import ModelRegistry, ModelVersion
from matcher.models.trial import TrialVerdict, evaluate_trial
from matcher.store import audit
from matcher.store.keys import Caller

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
    trial: dict[str, Any] = {}
    learned: list[dict[str, Any]] = []  # a ranker's feature effects, strongest first (bilingual labels)


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int
    active: str | None
    serving: str | None
    on_trial: str | None = None


class TrialPublic(BaseModel):
    """A ranker on interleaved trial and the evidence so far (see matcher/models/trial.py)."""

    model: str
    incumbent: str
    started_at: str | None = None
    serving_interleaved: bool
    verdict: dict[str, Any] | None = None


class SwitchPublic(BaseModel):
    active: str | None
    serving: str | None


def _public(v: ModelVersion) -> ModelPublic:
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
        trial=m.get("trial") or {},
        learned=m.get("learned") or [],
    )


def _serving(state: AppState, tenant: str) -> str | None:
    """The version of the ranker `tenant`'s lists are ranked by now (its own, else the shared one)."""
    return None if state.matcher is None else str(state.matcher.ranker_for(tenant).version)


def _serve(state: AppState, tenant: str) -> None:
    """Serve the caller's scope what the registry now says (requests in flight keep what they read)."""
    if state.matcher is not None:
        serve_scope(state.matcher, state.settings, tenant)


@router.get("/models", response_model=ModelsPublic)
def list_models(state: StateDep, caller: Annotated[Caller, permit("read", "model")]) -> ModelsPublic:
    """The caller's tenant's models with their manifests; which one is active there and which ranker serves
    the tenant now (its own, or the operator's shared one)."""
    reg = ModelRegistry.for_settings(state.settings)
    data = [_public(v) for v in reversed(reg.list(scope=caller.tenant))]
    t = reg.trial("ranker", scope=caller.tenant)
    return ModelsPublic(
        data=data,
        count=len(data),
        active=reg.active_id(scope=caller.tenant),
        serving=_serving(state, caller.tenant),
        on_trial=None if t is None else str(t["id"]),
    )


def _trial_public(
    state: AppState, reg: ModelRegistry, tenant: str, verdict: TrialVerdict | None = None
) -> TrialPublic:
    t = reg.trial("ranker", scope=tenant)
    if t is None:
        raise NotFound("no ranker is on trial")
    engine = state.matcher
    served = None if engine is None else engine.tenant_trials.get(tenant)
    return TrialPublic(
        model=str(t["id"]),
        incumbent=str(t.get("incumbent")),
        started_at=t.get("started_at"),
        serving_interleaved=served is not None and served.ranker.version == t["id"],
        verdict=None if verdict is None else verdict.as_dict(),
    )


@router.get("/models/trial", response_model=TrialPublic)
def trial_status(state: StateDep, caller: Annotated[Caller, permit("read", "model")]) -> TrialPublic:
    """The caller's tenant's ranker on trial and its evidence so far (votes of its interleaved lists, 95 %
    interval); read-only."""
    reg = ModelRegistry.for_settings(state.settings)
    with Session(state.db) as session:
        verdict = evaluate_trial(
            session, reg, scope=caller.tenant, act=False, planned=state.settings.trial_votes
        )
    return _trial_public(state, reg, caller.tenant, verdict)


@router.post("/models/{model_id}/trial", response_model=TrialPublic, status_code=201)
def start_trial(
    model_id: str, state: StateDep, session: SessionDep, caller: Annotated[Caller, permit("trial", "model")]
) -> TrialPublic:
    """Put one of the tenant's rankers on interleaved trial against the ranker the tenant is served (a running
    trial of the tenant ends); only the tenant's own lists interleave it."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        reg.get(model_id, scope=caller.tenant)  # another tenant's model is not found
        incumbent = _serving(state, caller.tenant) or _registry_serving(reg, caller.tenant)
        reg.start_trial(model_id, incumbent=incumbent)
        _serve(state, caller.tenant)
    started = {"trial": "started"}
    audit.record(
        session, caller, "model.trial", record_type="model", record_id=model_id, summary=started, commit=True
    )
    return _trial_public(state, reg, caller.tenant)


def _registry_serving(reg: ModelRegistry, tenant: str) -> str:
    """What the registry says `tenant` is served, when no engine runs in this process."""
    return reg.active_id(scope=tenant) or reg.active_id() or TransparentRanker.version


@router.post("/models/trial/stop", response_model=SwitchPublic)
def stop_trial(
    state: StateDep, session: SessionDep, caller: Annotated[Caller, permit("trial", "model")]
) -> SwitchPublic:
    """End the tenant's running trial; the ranker it is served stays."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        if (ended := reg.end_trial("ranker", scope=caller.tenant, status="candidate")) is None:
            raise NotFound("no ranker is on trial")
        _serve(state, caller.tenant)
    stopped = {"trial": "stopped"}
    audit.record(
        session, caller, "model.trial", record_type="model", record_id=ended, summary=stopped, commit=True
    )
    return SwitchPublic(active=reg.active_id(scope=caller.tenant), serving=_serving(state, caller.tenant))


@router.post("/models/rollback", response_model=SwitchPublic)
def rollback(
    state: StateDep, session: SessionDep, caller: Annotated[Caller, permit("rollback", "model")]
) -> SwitchPublic:
    """Re-activate the tenant's previous ranker (or, when there is none, serve it the shared one again)."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        back = reg.rollback(scope=caller.tenant)  # a broken previous artefact is refused before any switch
        _serve(state, caller.tenant)  # a rollback ends any trial
    audit.record(
        session,
        caller,
        "model.rollback",
        record_type="model",
        record_id=None if back is None else back.id,
        commit=True,
    )
    return SwitchPublic(active=None if back is None else back.id, serving=_serving(state, caller.tenant))


@router.post("/models/{model_id}/activate", response_model=SwitchPublic)
def activate(
    model_id: str,
    state: StateDep,
    session: SessionDep,
    caller: Annotated[Caller, permit("activate", "model")],
) -> SwitchPublic:
    """Make one of the tenant's rankers the one it is served; a corrupt artefact is refused (422) and nothing
    changes; another tenant's model is not found (404). Other tenants keep what they are served."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        reg.get(model_id, scope=caller.tenant)
        v = reg.activate(model_id)  # loads and checks the artefact before switching anything
        _serve(state, caller.tenant)  # an activation ends any trial
    audit.record(session, caller, "model.activate", record_type="model", record_id=v.id, commit=True)
    return SwitchPublic(active=v.id, serving=_serving(state, caller.tenant))
