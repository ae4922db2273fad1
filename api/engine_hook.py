"""Start-up hook: load the encoder, build or reconcile the indexes, subscribe the engine to store changes."""

from __future__ import annotations

import threading

from api.state import AppState
from matcher.matching.engine import MatchEngine
from matcher.models.encoder import load_configured_encoder
from training.registry import follow_registry, install_active_ranker, install_trial


def start_engine(state: AppState) -> None:
    encoder = load_configured_encoder(state.settings)
    engine = MatchEngine(state.settings, state.db, state.taxonomy, encoder)
    install_active_ranker(engine, state.settings)  # a corrupt artefact is refused; the default keeps serving
    install_trial(engine, state.settings)
    engine.start()
    state.hub.subscribe(engine)
    state.matcher = engine
    if state.settings.model_poll_s > 0:
        threading.Thread(
            target=follow_registry,
            args=(engine, state.settings, engine.closing),
            kwargs={"every": state.settings.model_poll_s},
            name="registry-follower",
            daemon=True,
        ).start()
