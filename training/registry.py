"""Registering trained models: a new version's artefact and manifest in the registry (the serving side, reading,
activating and trials, is `matcher.models.registry`)."""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from typing import Any

from embeddings.persist import atomic_write_json, library_versions, sha256_file
from matcher.matching.ranker import Ranker
from matcher.models.learned import LearnedRanker
from matcher.models.registry import (
    ARTEFACT,
    ARTEFACT_LIBRARIES,
    KINDS,
    MANIFEST,
    SHARED,
    ModelRegistry,
    ModelVersion,
)


class TrainingRegistry(ModelRegistry):
    """The model registry with training's write side: registering candidates."""

    def register(
        self,
        estimator: Ranker | None,
        *,
        kind: str = "ranker",
        scope: str = SHARED,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        ci: dict[str, Any] | None = None,
        status: str = "candidate",
        artefact_dir: str | os.PathLike | None = None,
        learned: list[dict[str, Any]] | None = None,
    ) -> ModelVersion:
        """Store a fitted estimator (or, for encoders, point at a model directory) as a new version of `scope`
        (a tenant id, or the shared scope); `learned` is what the model says it learned (a ranker's feature
        effects), kept in the manifest."""
        import joblib

        if kind not in KINDS:
            raise ValueError(f"kind: unknown {kind!r} ({', '.join(KINDS)})")
        if kind == "encoder" and scope != SHARED:
            raise ValueError("encoders are shared: one encoder builds the indexes every tenant searches")
        if not scope or "/" in scope:
            raise ValueError(f"scope: not a tenant id {scope!r}")
        now = datetime.now(UTC)
        model_id = f"{kind}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        d = self.root / model_id
        d.mkdir(parents=True, exist_ok=False)
        manifest: dict[str, Any] = {
            "id": model_id,
            "kind": kind,
            "scope": scope,
            "created_at": now.isoformat(),
            "status": status,
            "data": data or {},
            "params": params or {},
            "metrics": metrics or {},
            "ci": ci or {},
            "library_versions": library_versions(*ARTEFACT_LIBRARIES),
        }
        if learned:
            manifest["learned"] = learned
        if estimator is not None:
            estimator.version = model_id
            path = d / ARTEFACT
            joblib.dump(estimator, path)
            manifest["artefact"] = ARTEFACT
            manifest["sha256"] = sha256_file(path)
            # the class the artefact unpickles as: a trained LearnedRanker pickles as the serving class
            built = LearnedRanker if isinstance(estimator, LearnedRanker) else type(estimator)
            manifest["class"] = f"{built.__module__}.{built.__qualname__}"
        if artefact_dir is not None:
            manifest["artefact_dir"] = str(artefact_dir)
        atomic_write_json(d / MANIFEST, manifest, indent=2)
        return ModelVersion(model_id, manifest)
