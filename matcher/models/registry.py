"""Model registry in `settings.models_dir/registry/`, the serving side: manifests, verified artefacts, the active
version of each kind, activation, rollback and trial state (training registers versions: training/registry.py).

Layout::

    registry/
      state.json                  {"active": {kind: id}, "history": {kind: [ids]}, "trial": {kind: {...}}}
      <id>/model.joblib           the fitted estimator
      <id>/manifest.json          kind, data, params, metrics, ci, library versions, created_at, status, sha256

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


class ModelRegistry:
    """Versions of trained models on disk. Thread-safe within one process; writes are atomic renames."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._lock = threading.RLock()

    @classmethod
    def for_settings(cls, settings: Settings) -> Self:
        return cls(Path(settings.models_dir) / "registry")

    # ------------------------------------------------------------------ state
    def _state(self) -> dict[str, Any]:
        """``{"active": {kind: id}, "history": {kind: [ids]}, "trial": {kind: {...}}}``: each kind (ranker,
        encoder) has its own active version, rollback history and running trial. A state written by older versions (one active id, one history list) is
        read by the kinds of the ids it names."""
        empty: dict[str, Any] = {"active": {}, "history": {}, "trial": {}}
        path = self.root / STATE
        if not path.exists():
            return empty
        try:
            data = json.loads(path.read_text())
        except ValueError:
            logger.error("registry state %s is unreadable; treating as no active model", path)
            return empty
        active, history = data.get("active"), data.get("history")
        if isinstance(active, dict) and isinstance(history, dict):
            trial = data.get("trial")
            return {
                "active": {k: v for k, v in active.items() if v},
                "history": {k: list(v or []) for k, v in history.items()},
                "trial": {k: dict(v) for k, v in trial.items() if v} if isinstance(trial, dict) else {},
            }
        out = empty
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

    def _save_state(self, state: dict[str, Any]) -> None:
        atomic_write_json(self.root / STATE, state, indent=2)

    def active_id(self, kind: str = "ranker") -> str | None:
        active = self._state()["active"].get(kind)
        if not active:
            return None
        try:
            return active if self.get(active).kind == kind else None
        except NotFound:
            logger.error("the active %s %s is missing from the registry", kind, active)
            return None

    # ------------------------------------------------------------------ versions
    def list(self) -> list[ModelVersion]:
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
        return out

    def get(self, model_id: str) -> ModelVersion:
        if not model_id or "/" in model_id or model_id.startswith("."):
            raise NotFound(f"no model {model_id!r}")
        path = self.root / model_id / MANIFEST
        if not path.exists():
            raise NotFound(f"no model {model_id!r} in the registry")
        try:
            return ModelVersion(model_id, json.loads(path.read_text()))
        except ValueError:
            raise ModelArtefactError(f"model {model_id}: manifest is not valid JSON") from None

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
        """Make a version the active one of its kind (rankers: after proving it loads); the previous active
        one of that kind goes on its history."""
        with self._lock:
            v = self.get(model_id)
            if v.kind == "ranker":
                self.load(model_id)
            if v.status == "rejected":
                logger.warning("activating %s although its evaluation did not pass", model_id)
            state = self._state()
            prev = state["active"].get(v.kind)
            if prev == model_id:
                return v
            self._drop_trial(state, v.kind, keep=model_id)
            if prev:
                state["history"].setdefault(v.kind, []).append(prev)
                self._set_status(prev, "retired")
            state["active"][v.kind] = model_id
            self._save_state(state)
            self._set_status(model_id, "active")
            return self.get(model_id)

    def rollback(self, kind: str = "ranker") -> ModelVersion | None:
        """Re-activate the previous active version of `kind`; None when that is the default (the transparent
        ranker, or the encoder the service was set up with)."""
        with self._lock:
            state = self._state()
            current = state["active"].get(kind)
            history = state["history"].setdefault(kind, [])
            if not current and not history:
                raise ValidationFailed(f"nothing to roll back: no {kind} has been activated")
            prev = history.pop() if history else None
            if prev is not None and kind == "ranker":
                self.load(prev)  # refuse to roll back onto a broken artefact
            self._drop_trial(state, kind)
            if current:
                self._set_status(current, "retired")
            if prev is None:
                state["active"].pop(kind, None)
            else:
                state["active"][kind] = prev
            self._save_state(state)
            if prev is None:
                return None
            self._set_status(prev, "active")
            return self.get(prev)

    # ------------------------------------------------------------------ trials
    def trial(self, kind: str = "ranker") -> dict[str, Any] | None:
        """The running trial of `kind`: ``{"id", "incumbent", "started_at"}``, or None."""
        t = self._state()["trial"].get(kind)
        return dict(t) if t and t.get("id") else None

    def start_trial(self, model_id: str, *, incumbent: str) -> ModelVersion:
        """Put a registered ranker on interleaved trial against `incumbent` (the version in service); a trial
        already running for that kind is ended first (its model goes back to 'candidate')."""
        with self._lock:
            v = self.get(model_id)
            if v.kind != "ranker":
                raise ValidationFailed(f"model {model_id}: only rankers can be put on trial")
            self.load(model_id)  # a broken artefact never reaches serving
            state = self._state()
            if state["active"].get("ranker") == model_id:
                raise ValidationFailed(f"model {model_id} is already the active ranker")
            self._drop_trial(state, "ranker")
            state["trial"]["ranker"] = {
                "id": model_id,
                "incumbent": incumbent,
                "started_at": datetime.now(UTC).isoformat(),
            }
            self._save_state(state)
            self._set_status(model_id, "trial")
            return self.get(model_id)

    def end_trial(
        self, kind: str = "ranker", *, status: str = "rejected", verdict: dict[str, Any] | None = None
    ) -> str | None:
        """Stop the running trial of `kind` without promoting it; its model gets `status` and the verdict is
        kept in its manifest. Returns the model id, or None when no trial was running."""
        with self._lock:
            state = self._state()
            t = state["trial"].pop(kind, None)
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

    def _drop_trial(self, state: dict[str, Any], kind: str, *, keep: str | None = None) -> None:
        """End `kind`'s trial inside a state change (the ranker it was compared with is changing); its model
        goes back to 'candidate' unless it is `keep` (the one being activated). Does not save `state`."""
        t = state["trial"].pop(kind, None)
        if t and t.get("id") and t["id"] != keep:
            try:
                self._set_status(str(t["id"]), "candidate")
            except NotFound:
                pass

    def load_active(self, kind: str = "ranker") -> Ranker | None:
        """The active estimator, or None when none is active (the caller keeps its default)."""
        active = self.active_id(kind)
        return None if active is None else self.load(active)
