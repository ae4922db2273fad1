"""Model registry in `settings.models_dir/registry/`, the serving side: manifests, verified artefacts, the active
version of each kind per scope, activation, rollback and trial state (training registers versions:
training/registry.py).

A model belongs to one **scope**: a tenant id (trained on that tenant's outcomes, served to it alone) or the
operator's shared scope `*` (served to every tenant without a ranker of its own; encoders are always shared,
since one encoder builds the indexes every tenant searches). Each scope has its own active version, rollback
history and trial per kind; nothing done in one scope changes another.

Layout::

    registry/
      state.json                  {"scopes": {scope: {"active": {kind: id}, "history": {kind: [ids]},
                                                      "trial": {kind: {...}}}}}
      <id>/model.joblib           the fitted estimator
      <id>/manifest.json          kind, scope, data, params, metrics, ci, library versions, created_at, status,
                                  sha256

A state file written before scopes existed (`active`/`history`/`trial` at the top) is the shared scope's, so an
upgraded deployment keeps serving what it served; a manifest without a scope is shared.

Loading checks the artefact's SHA-256 against its manifest and the library versions it was built with; a
mismatch raises `ModelArtefactError` and the caller keeps whatever model it is serving."""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from embeddings.persist import atomic_write_json, library_versions, sha256_file
from matcher.errors import NotFound, ValidationFailed
from matcher.matching.ranker import Ranker
from matcher.settings import Settings

logger = logging.getLogger(__name__)

# Rankers registered before the packages were laid out by concept pickled their classes at `training.ranker`:
# while an artefact loads, that name resolves to the serving classes (same state, no training code imported).
LEGACY_RANKER_MODULE = "training.ranker"
_LEGACY_LOCK = threading.Lock()


@contextmanager
def legacy_class_paths() -> Iterator[None]:
    from matcher.models.learned import IsotonicCalibrator, LearnedRanker, PlattCalibrator

    alias = types.ModuleType(LEGACY_RANKER_MODULE)
    alias.LearnedRanker, alias._Platt, alias._Isotonic = LearnedRanker, PlattCalibrator, IsotonicCalibrator
    with _LEGACY_LOCK:
        added = sys.modules.setdefault(LEGACY_RANKER_MODULE, alias) is alias
        try:
            yield
        finally:
            if added:
                del sys.modules[LEGACY_RANKER_MODULE]


ARTEFACT = "model.joblib"
MANIFEST = "manifest.json"
STATE = "state.json"
STATUSES = ("candidate", "trial", "active", "retired", "rejected")
SHARED = "*"  # the operator's scope: models served to every tenant that has none of its own
KINDS = ("ranker", "encoder")
# the libraries a ranker artefact is pickled with; a different minor version may not unpickle it faithfully
ARTEFACT_LIBRARIES = ("numpy", "sklearn")


class ModelArtefactError(ValidationFailed):
    """An artefact that does not match its manifest (corrupt, tampered, or built by other library versions)."""


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


@dataclass
class ModelVersion:
    id: str
    manifest: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "candidate"))

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", ""))

    @property
    def scope(self) -> str:
        return str(self.manifest.get("scope") or SHARED)


ScopeState = dict[
    str, dict[str, Any]
]  # {"active": {kind: id}, "history": {kind: [ids]}, "trial": {kind: {}}}


def _empty_scope() -> ScopeState:
    return {"active": {}, "history": {}, "trial": {}}


class ModelRegistry:
    """Versions of trained models on disk. Thread-safe within one process; writes are atomic renames."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._lock = threading.RLock()

    @classmethod
    def for_settings(cls, settings: Settings) -> Self:
        return cls(Path(settings.models_dir) / "registry")

    # ------------------------------------------------------------------ state
    def _state(self) -> dict[str, ScopeState]:
        """scope -> that scope's state (see `_scope_state`). A state file without scopes is the shared scope's."""
        path = self.root / STATE
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except ValueError:
            logger.error("registry state %s is unreadable; treating as no active model", path)
            return {}
        scopes = data.get("scopes")
        if isinstance(scopes, dict):
            return {str(k): self._scope_state(v) for k, v in scopes.items() if isinstance(v, dict)}
        return {SHARED: self._scope_state(data)}

    def _scope_state(self, data: dict[str, Any]) -> ScopeState:
        """``{"active": {kind: id}, "history": {kind: [ids]}, "trial": {kind: {...}}}``: each kind (ranker,
        encoder) has its own active version, rollback history and running trial. A state written by older
        versions (one active id, one history list) is read by the kinds of the ids it names."""
        active, history = data.get("active"), data.get("history")
        if isinstance(active, dict) and isinstance(history, dict):
            trial = data.get("trial")
            return {
                "active": {k: v for k, v in active.items() if v},
                "history": {k: list(v or []) for k, v in history.items()},
                "trial": {k: dict(v) for k, v in trial.items() if v} if isinstance(trial, dict) else {},
            }
        out = _empty_scope()
        for model_id in list(history or []) + ([active] if isinstance(active, str) and active else []):
            kind = self._kind_of(model_id)
            if kind is not None:
                out["history"].setdefault(kind, []).append(model_id)
        for kind, ids in out["history"].items():
            if isinstance(active, str) and ids and ids[-1] == active:
                out["active"][kind] = ids.pop()
        return out

    def _kind_of(self, model_id: str) -> str | None:
        try:
            return self.get(model_id).kind
        except (NotFound, ModelArtefactError):
            return None

    def _save_state(self, state: dict[str, ScopeState]) -> None:
        atomic_write_json(self.root / STATE, {"scopes": state}, indent=2)

    def scopes(self) -> list[str]:
        """The scopes with an active version or a trial of some kind, the shared scope first."""
        state = self._state()
        named = {k for k, v in state.items() if v["active"] or v["trial"]}
        return sorted(named, key=lambda k: (k != SHARED, k))

    def active_id(self, kind: str = "ranker", *, scope: str = SHARED) -> str | None:
        active = self._state().get(scope, _empty_scope())["active"].get(kind)
        if not active:
            return None
        try:
            v = self.get(active)
        except NotFound:
            logger.error("the active %s %s of scope %s is missing from the registry", kind, active, scope)
            return None
        return active if v.kind == kind and v.scope == scope else None

    # ------------------------------------------------------------------ versions
    def list(self, *, scope: str | None = None) -> list[ModelVersion]:
        """Every version (of `scope` only, when given), oldest first."""
        if not self.root.exists():
            return []
        out = []
        for d in sorted(self.root.iterdir()):
            m = d / MANIFEST
            if d.is_dir() and m.exists():
                try:
                    out.append(ModelVersion(d.name, json.loads(m.read_text())))
                except ValueError:
                    logger.warning("skipping %s: unreadable manifest", d)
        out.sort(key=lambda v: str(v.manifest.get("created_at", "")))
        return out if scope is None else [v for v in out if v.scope == scope]

    def get(self, model_id: str, *, scope: str | None = None) -> ModelVersion:
        """A version; with `scope`, one of another scope is not found (its existence is not disclosed)."""
        if not model_id or "/" in model_id or model_id.startswith("."):
            raise NotFound(f"no model {model_id!r}")
        path = self.root / model_id / MANIFEST
        if not path.exists():
            raise NotFound(f"no model {model_id!r} in the registry")
        try:
            v = ModelVersion(model_id, json.loads(path.read_text()))
        except ValueError:
            raise ModelArtefactError(f"model {model_id}: manifest is not valid JSON") from None
        if scope is not None and v.scope != scope:
            raise NotFound(f"no model {model_id!r} in the registry")
        return v

    def _set_status(self, model_id: str, status: str) -> None:
        v = self.get(model_id)
        v.manifest["status"] = status
        atomic_write_json(self.root / model_id / MANIFEST, v.manifest, indent=2)

    def load(self, model_id: str) -> Ranker:
        """The fitted estimator of a version, after checking its checksum and library versions."""
        import joblib

        v = self.get(model_id)
        m = v.manifest
        path = self.root / model_id / str(m.get("artefact", ARTEFACT))
        if not path.exists() or "sha256" not in m:
            raise ModelArtefactError(f"model {model_id}: artefact missing")
        digest = sha256_file(path)
        if digest != m["sha256"]:
            raise ModelArtefactError(
                f"model {model_id}: artefact checksum {digest[:12]} does not match the manifest's "
                f"{str(m['sha256'])[:12]} (corrupt or replaced)"
            )
        built = m.get("library_versions") or {}
        here = library_versions(*ARTEFACT_LIBRARIES)
        for lib in ("scikit-learn", "numpy"):
            if lib in built and _minor(str(built[lib])) != _minor(here[lib]):
                raise ModelArtefactError(
                    f"model {model_id}: built with {lib} {built[lib]}, this process has {here[lib]}; retrain it"
                )
        try:
            with legacy_class_paths():
                est = joblib.load(path)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad artefact
            raise ModelArtefactError(
                f"model {model_id}: cannot load artefact ({type(exc).__name__})"
            ) from None
        if not isinstance(est, Ranker):
            raise ModelArtefactError(f"model {model_id}: artefact is not a ranker")
        return est

    # ------------------------------------------------------------------ activation
    def activate(self, model_id: str) -> ModelVersion:
        """Make a version the active one of its kind in its scope (rankers: after proving it loads); the
        previous active one of that kind and scope goes on that scope's history."""
        with self._lock:
            v = self.get(model_id)
            if v.kind == "ranker":
                self.load(model_id)
            if v.status == "rejected":
                logger.warning("activating %s although its evaluation did not pass", model_id)
            state = self._state()
            scoped = state.setdefault(v.scope, _empty_scope())
            prev = scoped["active"].get(v.kind)
            if prev == model_id:
                return v
            self._drop_trial(scoped, v.kind, keep=model_id)
            if prev:
                scoped["history"].setdefault(v.kind, []).append(prev)
                self._set_status(prev, "retired")
            scoped["active"][v.kind] = model_id
            self._save_state(state)
            self._set_status(model_id, "active")
            return self.get(model_id)

    def rollback(self, kind: str = "ranker", *, scope: str = SHARED) -> ModelVersion | None:
        """Re-activate the previous active version of `kind` in `scope`; None when that is the default (for a
        tenant, the shared ranker; for the shared scope, the transparent ranker or the encoder the service was
        set up with)."""
        with self._lock:
            state = self._state()
            scoped = state.setdefault(scope, _empty_scope())
            current = scoped["active"].get(kind)
            history = scoped["history"].setdefault(kind, [])
            if not current and not history:
                raise ValidationFailed(f"nothing to roll back: no {kind} has been activated")
            prev = history.pop() if history else None
            if prev is not None and kind == "ranker":
                self.load(prev)  # refuse to roll back onto a broken artefact
            self._drop_trial(scoped, kind)
            if current:
                self._set_status(current, "retired")
            if prev is None:
                scoped["active"].pop(kind, None)
            else:
                scoped["active"][kind] = prev
            self._save_state(state)
            if prev is None:
                return None
            self._set_status(prev, "active")
            return self.get(prev)

    # ------------------------------------------------------------------ trials
    def trial(self, kind: str = "ranker", *, scope: str = SHARED) -> dict[str, Any] | None:
        """The running trial of `kind` in `scope`: ``{"id", "incumbent", "started_at"}``, or None."""
        t = self._state().get(scope, _empty_scope())["trial"].get(kind)
        return dict(t) if t and t.get("id") else None

    def start_trial(self, model_id: str, *, incumbent: str) -> ModelVersion:
        """Put a registered ranker on interleaved trial, in its scope, against `incumbent` (the version that
        scope is served); a trial already running in that scope is ended first (its model goes back to
        'candidate')."""
        with self._lock:
            v = self.get(model_id)
            if v.kind != "ranker":
                raise ValidationFailed(f"model {model_id}: only rankers can be put on trial")
            self.load(model_id)  # a broken artefact never reaches serving
            state = self._state()
            scoped = state.setdefault(v.scope, _empty_scope())
            if scoped["active"].get("ranker") == model_id:
                raise ValidationFailed(f"model {model_id} is already the active ranker")
            self._drop_trial(scoped, "ranker")
            scoped["trial"]["ranker"] = {
                "id": model_id,
                "incumbent": incumbent,
                "started_at": datetime.now(UTC).isoformat(),
            }
            self._save_state(state)
            self._set_status(model_id, "trial")
            return self.get(model_id)

    def end_trial(
        self,
        kind: str = "ranker",
        *,
        scope: str = SHARED,
        status: str = "rejected",
        verdict: dict[str, Any] | None = None,
    ) -> str | None:
        """Stop the running trial of `kind` in `scope` without promoting it; its model gets `status` and the
        verdict is kept in its manifest. Returns the model id, or None when no trial was running."""
        with self._lock:
            state = self._state()
            t = state.get(scope, _empty_scope())["trial"].pop(kind, None)
            if not t:
                return None
            self._save_state(state)
            model_id = str(t["id"])
            try:
                self._set_status(model_id, status)
                if verdict is not None:
                    self.record_trial(model_id, verdict)
            except NotFound:
                pass
            return model_id

    def record_trial(self, model_id: str, verdict: dict[str, Any]) -> None:
        """Keep a trial's latest evidence (or final verdict) in its model's manifest."""
        with self._lock:
            v = self.get(model_id)
            v.manifest["trial"] = verdict
            atomic_write_json(self.root / model_id / MANIFEST, v.manifest, indent=2)

    def _drop_trial(self, scoped: ScopeState, kind: str, *, keep: str | None = None) -> None:
        """End `kind`'s trial inside a state change of one scope (the ranker it was compared with is changing);
        its model goes back to 'candidate' unless it is `keep` (the one being activated). Does not save."""
        t = scoped["trial"].pop(kind, None)
        if t and t.get("id") and t["id"] != keep:
            try:
                self._set_status(str(t["id"]), "candidate")
            except NotFound:
                pass

    def load_active(self, kind: str = "ranker", *, scope: str = SHARED) -> Ranker | None:
        """The active estimator of `scope`, or None when none is active there (the caller keeps its default)."""
        active = self.active_id(kind, scope=scope)
        return None if active is None else self.load(active)
