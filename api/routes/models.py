"""Trained models: list the registry, and (admins) activate a version or roll back, swapping the live ranker."""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import CallerDep, SessionDep, StateDep, permit
from api.state import AppState
from matcher.errors import NotFound
from matcher.matching.ranker import TransparentRanker
from matcher.models.follower import install_trial
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


def _serving(state: AppState) -> str | None:
    return None if state.matcher is None else str(state.matcher.ranker.version)


@router.get("/models", response_model=ModelsPublic)
def list_models(state: StateDep, caller: CallerDep) -> ModelsPublic:
    """Every registered model with its manifest; which one is active and which ranker serves now."""
    reg = ModelRegistry.for_settings(state.settings)
    data = [_public(v) for v in reversed(reg.list())]
    t = reg.trial("ranker")
    return ModelsPublic(
        data=data,
        count=len(data),
        active=reg.active_id(),
        serving=_serving(state),
        on_trial=None if t is None else str(t["id"]),
    )


def _trial_public(state: AppState, reg: ModelRegistry, verdict: TrialVerdict | None = None) -> TrialPublic:
    t = reg.trial("ranker")
    if t is None:
        raise NotFound("no ranker is on trial")
    engine = state.matcher
    return TrialPublic(
        model=str(t["id"]),
        incumbent=str(t.get("incumbent")),
        started_at=t.get("started_at"),
        serving_interleaved=engine is not None
        and engine.trial is not None
        and engine.trial.ranker.version == t["id"],
        verdict=None if verdict is None else verdict.as_dict(),
    )


@router.get("/models/trial", response_model=TrialPublic)
def trial_status(state: StateDep, caller: CallerDep) -> TrialPublic:
    """The ranker on trial and its evidence so far (votes of interleaved lists, 95 % interval); read-only."""
    reg = ModelRegistry.for_settings(state.settings)
    with Session(state.db) as session:
        verdict = evaluate_trial(session, reg, act=False, planned=state.settings.trial_votes)
    return _trial_public(state, reg, verdict)


@router.post("/models/{model_id}/trial", response_model=TrialPublic, status_code=201)
def start_trial(
    model_id: str, state: StateDep, session: SessionDep, caller: Annotated[Caller, permit("trial", "model")]
) -> TrialPublic:
    """Put a registered ranker on interleaved trial against the ranker in service (a running trial ends)."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        reg.start_trial(model_id, incumbent=_serving(state) or reg.active_id() or TransparentRanker.version)
        if state.matcher is not None:
            install_trial(state.matcher, state.settings)
    started = {"trial": "started"}
    audit.record(
        session, caller, "model.trial", record_type="model", record_id=model_id, summary=started, commit=True
    )
    return _trial_public(state, reg)


@router.post("/models/trial/stop", response_model=SwitchPublic)
def stop_trial(
    state: StateDep, session: SessionDep, caller: Annotated[Caller, permit("trial", "model")]
) -> SwitchPublic:
    """End the running trial; the ranker in service stays."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        if (ended := reg.end_trial("ranker", status="candidate")) is None:
            raise NotFound("no ranker is on trial")
        if state.matcher is not None:
            install_trial(state.matcher, state.settings)
    stopped = {"trial": "stopped"}
    audit.record(
        session, caller, "model.trial", record_type="model", record_id=ended, summary=stopped, commit=True
    )
    return SwitchPublic(active=reg.active_id(), serving=_serving(state))


@router.post("/models/rollback", response_model=SwitchPublic)
def rollback(
    state: StateDep, session: SessionDep, caller: Annotated[Caller, permit("rollback", "model")]
) -> SwitchPublic:
    """Re-activate the previous model (or the transparent default when there is none)."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        back = reg.rollback()
        ranker = TransparentRanker() if back is None else reg.load(back.id)
        if state.matcher is not None:
            state.matcher.ranker = ranker
            install_trial(state.matcher, state.settings)  # a rollback ends any trial
    audit.record(
        session,
        caller,
        "model.rollback",
        record_type="model",
        record_id=None if back is None else back.id,
        commit=True,
    )
    return SwitchPublic(active=None if back is None else back.id, serving=_serving(state))


@router.post("/models/{model_id}/activate", response_model=SwitchPublic)
def activate(
    model_id: str,
    state: StateDep,
    session: SessionDep,
    caller: Annotated[Caller, permit("activate", "model")],
) -> SwitchPublic:
    """Make a registered ranker the live one; a corrupt artefact is refused (422) and nothing changes."""
    reg = ModelRegistry.for_settings(state.settings)
    with _swap:
        v = reg.activate(model_id)  # loads and checks the artefact before switching anything
        if v.kind == "ranker" and state.matcher is not None:
            # one attribute assignment: requests in flight finish with the ranker they already read
            state.matcher.ranker = reg.load(model_id)
            install_trial(state.matcher, state.settings)  # an activation ends any trial
    audit.record(session, caller, "model.activate", record_type="model", record_id=v.id, commit=True)
    return SwitchPublic(active=v.id, serving=_serving(state))
