"""Model registry in `settings.models_dir/registry/`: versioned artefacts with manifests, activation, rollback.

Layout::

    registry/
      state.json                  {"active": {kind: id}, "history": {kind: [ids]}, "trial": {kind: {...}}}
      <id>/model.joblib           the fitted estimator
      <id>/manifest.json          kind, data, params, metrics, ci, library versions, created_at, status, sha256

Loading checks the artefact's SHA-256 against its manifest and the library versions it was built with; a
mismatch raises `ModelArtefactError` and the caller keeps whatever model it is serving."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matcher.errors import NotFound, ValidationFailed

logger = logging.getLogger(__name__)

ARTEFACT = "model.joblib"
MANIFEST = "manifest.json"
STATE = "state.json"
STATUSES = ("candidate", "trial", "active", "retired", "rejected")
KINDS = ("ranker", "encoder")


class ModelArtefactError(ValidationFailed):
    """An artefact that does not match its manifest (corrupt, tampered, or built by other library versions)."""


def library_versions() -> dict[str, str]:
    import numpy
    import sklearn

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, ensure_ascii=False, indent=2, default=str)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    def for_settings(cls, settings: Any) -> ModelRegistry:
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
        _write_json(self.root / STATE, state)

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
        _write_json(self.root / model_id / MANIFEST, v.manifest)

    def register(
        self,
        estimator: Any,
        *,
        kind: str = "ranker",
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        ci: dict[str, Any] | None = None,
        status: str = "candidate",
        artefact_dir: str | os.PathLike | None = None,
        learned: list[dict[str, Any]] | None = None,
    ) -> ModelVersion:
        """Store a fitted estimator (or, for encoders, point at a model directory) as a new version;
        `learned` is what the model says it learned (a ranker's feature effects), kept in the manifest."""
        import joblib

        if kind not in KINDS:
            raise ValueError(f"kind: unknown {kind!r} ({', '.join(KINDS)})")
        now = datetime.now(UTC)
        model_id = f"{kind}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        d = self.root / model_id
        d.mkdir(parents=True, exist_ok=False)
        manifest: dict[str, Any] = {
            "id": model_id,
            "kind": kind,
            "created_at": now.isoformat(),
            "status": status,
            "data": data or {},
            "params": params or {},
            "metrics": metrics or {},
            "ci": ci or {},
            "library_versions": library_versions(),
        }
        if learned:
            manifest["learned"] = learned
        if estimator is not None:
            if hasattr(estimator, "version"):
                estimator.version = model_id
            path = d / ARTEFACT
            joblib.dump(estimator, path)
            manifest["artefact"] = ARTEFACT
            manifest["sha256"] = _sha256(path)
            manifest["class"] = f"{type(estimator).__module__}.{type(estimator).__qualname__}"
        if artefact_dir is not None:
            manifest["artefact_dir"] = str(artefact_dir)
        _write_json(d / MANIFEST, manifest)
        return ModelVersion(model_id, manifest)

    def load(self, model_id: str) -> Any:
        """The fitted estimator of a version, after checking its checksum and library versions."""
        import joblib

        v = self.get(model_id)
        m = v.manifest
        path = self.root / model_id / str(m.get("artefact", ARTEFACT))
        if not path.exists() or "sha256" not in m:
            raise ModelArtefactError(f"model {model_id}: artefact missing")
        digest = _sha256(path)
        if digest != m["sha256"]:
            raise ModelArtefactError(
                f"model {model_id}: artefact checksum {digest[:12]} does not match the manifest's "
                f"{str(m['sha256'])[:12]} (corrupt or replaced)"
            )
        built = m.get("library_versions") or {}
        here = library_versions()
        for lib in ("scikit-learn", "numpy"):
            if lib in built and _minor(str(built[lib])) != _minor(here[lib]):
                raise ModelArtefactError(
                    f"model {model_id}: built with {lib} {built[lib]}, this process has {here[lib]}; retrain it"
                )
        try:
            est = joblib.load(path)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad artefact
            raise ModelArtefactError(
                f"model {model_id}: cannot load artefact ({type(exc).__name__})"
            ) from None
        if m.get("kind") == "ranker" and not (
            callable(getattr(est, "score", None)) and hasattr(est, "version")
        ):
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

    def end_trial(self, kind: str = "ranker", *, status: str = "rejected", verdict: Any = None) -> str | None:
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

    def record_trial(self, model_id: str, verdict: Any) -> None:
        """Keep a trial's latest evidence (or final verdict) in its model's manifest."""
        with self._lock:
            v = self.get(model_id)
            v.manifest["trial"] = verdict
            _write_json(self.root / model_id / MANIFEST, v.manifest)

    def _drop_trial(self, state: dict[str, Any], kind: str, *, keep: str | None = None) -> None:
        """End `kind`'s trial inside a state change (the ranker it was compared with is changing); its model
        goes back to 'candidate' unless it is `keep` (the one being activated). Does not save `state`."""
        t = state["trial"].pop(kind, None)
        if t and t.get("id") and t["id"] != keep:
            try:
                self._set_status(str(t["id"]), "candidate")
            except NotFound:
                pass

    def load_active(self, kind: str = "ranker") -> Any | None:
        """The active estimator, or None when none is active (the caller keeps its default)."""
        active = self.active_id(kind)
        return None if active is None else self.load(active)


def install_active_ranker(engine: Any, settings: Any) -> str:
    """Put the registry's active ranker into `engine`; on a bad artefact log why and keep the engine's ranker.

    Returns the version the engine serves afterwards."""
    registry = ModelRegistry.for_settings(settings)
    try:
        est = registry.load_active("ranker")
    except ValidationFailed as exc:
        logger.error("refusing the active ranker: %s; %s keeps serving", exc.detail, engine.ranker.version)
        return str(engine.ranker.version)
    if est is not None:
        engine.ranker = est  # one attribute assignment: requests in flight finish with the ranker they read
        logger.info("serving ranker %s", est.version)
    return str(engine.ranker.version)


def install_trial(engine: Any, settings: Any) -> str | None:
    """Serve the registry's ranker trial (interleaved with the ranker in service) or stop serving one.

    The trial is served only while the engine's ranker is the one it is compared with; a trial artefact that
    fails to load is logged and not served. Returns the version on trial in the engine afterwards."""
    return _install_trial(engine, settings)[0]


def _install_trial(engine: Any, settings: Any) -> tuple[str | None, str | None]:
    """`install_trial`, also returning the id of a trial artefact refused at load (else None)."""
    from matcher.matching.engine import Trial

    registry = ModelRegistry.for_settings(settings)
    t = registry.trial("ranker")
    current = engine.trial
    if t is None or t.get("incumbent") != str(engine.ranker.version) or settings.trial_share <= 0:
        if current is not None:
            engine.trial = None
            logger.info("no ranker trial to serve: serving %s alone", engine.ranker.version)
        return None, None
    if current is not None and current.ranker.version == t["id"]:
        return str(t["id"]), None
    try:
        est = registry.load(str(t["id"]))
    except ValidationFailed as exc:
        logger.error("refusing the ranker on trial: %s", exc.detail)
        engine.trial = None
        return None, str(t["id"])
    engine.trial = Trial(est, float(settings.trial_share))
    logger.info("ranker %s on interleaved trial against %s", est.version, engine.ranker.version)
    return str(est.version), None


def judge_trial(engine: Any, settings: Any) -> Any:
    """Judge the running trial on the store's feedback and carry out the verdict (see training/rankers/trial.py)."""
    from sqlmodel import Session

    from training.rankers.trial import evaluate_trial

    with Session(engine.db) as session:
        return evaluate_trial(session, ModelRegistry.for_settings(settings), planned=settings.trial_votes)


def follow_registry(engine: Any, settings: Any, stop: Any, *, every: float) -> None:
    """Until ``stop`` (a threading.Event) is set, check the registry every ``every`` seconds and serve what is
    active there: the ranker activated or rolled back by `matcher train ranker`, the API of another worker, or
    by hand; and, when an encoder is activated (`matcher train encoder` installs it as the default), the
    configured encoder, switched in without stopping (`MatchEngine.swap_encoder`). A ranker put on trial is
    interleaved with the one in service, and every ``settings.trial_check_s`` its evidence is judged and the
    verdict carried out (training/rankers/trial.py). A bad artefact is refused as at start-up and what serves stays."""
    from matcher.matching.ranker import TransparentRanker

    registry = ModelRegistry.for_settings(settings)
    refused: str | None = None  # an active artefact that failed to load is not retried every tick
    trial_refused: str | None = None
    encoder_seen = registry.active_id("encoder")
    last_judged = time.monotonic()
    while not stop.wait(every):
        try:
            active = registry.active_id("ranker")
            if active is None:
                if not isinstance(engine.ranker, TransparentRanker):
                    engine.ranker = TransparentRanker()
                    logger.info("no active ranker in the registry: serving %s", engine.ranker.version)
            elif active not in (engine.ranker.version, refused):
                refused = None if install_active_ranker(engine, settings) == active else active
            trial = registry.trial("ranker")
            wanted = None if trial is None else str(trial["id"])
            if wanted is None:
                if engine.trial is not None:
                    _install_trial(engine, settings)  # the trial ended: serve the ranker alone
                trial_refused = None
            elif wanted != trial_refused:
                # a trial artefact that fails to load is refused once, not logged again every tick
                trial_refused = _install_trial(engine, settings)[1]
            if (
                engine.trial is not None
                and settings.trial_check_s > 0
                and time.monotonic() - last_judged >= settings.trial_check_s
            ):
                last_judged = time.monotonic()
                judge_trial(engine, settings)  # a promotion is served from the next tick on
            encoder_active = registry.active_id("encoder")
            if encoder_active != encoder_seen:
                encoder_seen = encoder_active
                _switch_encoder(engine, settings)
        except Exception:  # noqa: BLE001 - a registry read error must not stop the service; retried next tick
            logger.exception("checking the model registry failed")


def _switch_encoder(engine: Any, settings: Any) -> None:
    """Load the configured encoder; when it is not the one serving, rebuild the indexes with it and switch."""
    from matcher.models.encoder import EncoderUnavailable, load_configured_encoder

    try:
        encoder = load_configured_encoder(settings)
    except EncoderUnavailable as exc:
        logger.error("refusing the new encoder: %s; %s keeps serving", exc.detail, engine.encoder.model_id)
        return
    if encoder.model_id != engine.encoder.model_id:
        engine.swap_encoder(encoder)
