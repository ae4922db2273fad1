"""Serving what the registry says: install the active ranker and the ranker on trial into a running engine,
and follow the registry (activations, rollbacks, trial verdicts, a new default encoder) while it runs."""

from __future__ import annotations

import logging
import threading
import time

from sqlmodel import Session

from matcher.errors import ValidationFailed
from matcher.matching.engine import MatchEngine, Trial
from matcher.matching.ranker import TransparentRanker
from matcher.models.encoder import EncoderUnavailable, load_configured_encoder
from matcher.models.registry import ModelRegistry
from matcher.models.trial import TrialVerdict, evaluate_trial
from matcher.settings import Settings

logger = logging.getLogger(__name__)


def install_active_ranker(engine: MatchEngine, settings: Settings) -> str:
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


def install_trial(engine: MatchEngine, settings: Settings) -> str | None:
    """Serve the registry's ranker trial (interleaved with the ranker in service) or stop serving one.

    The trial is served only while the engine's ranker is the one it is compared with; a trial artefact that
    fails to load is logged and not served. Returns the version on trial in the engine afterwards."""
    return _install_trial(engine, settings)[0]


def _install_trial(engine: MatchEngine, settings: Settings) -> tuple[str | None, str | None]:
    """`install_trial`, also returning the id of a trial artefact refused at load (else None)."""
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


def judge_trial(engine: MatchEngine, settings: Settings) -> TrialVerdict | None:
    """Judge the running trial on the store's feedback and carry out the verdict (see matcher/models/trial.py)."""
    with Session(engine.db) as session:
        return evaluate_trial(session, ModelRegistry.for_settings(settings), planned=settings.trial_votes)


def follow_registry(engine: MatchEngine, settings: Settings, stop: threading.Event, *, every: float) -> None:
    """Until `stop` is set, check the registry every `every` seconds and serve what is active there: the ranker
    activated or rolled back by `matcher train ranker`, the API of another worker, or by hand; and, when an
    encoder is activated (`matcher train encoder` installs it as the default), the configured encoder, switched
    in without stopping (`MatchEngine.swap_encoder`). A ranker put on trial is interleaved with the one in
    service, and every `settings.trial_check_s` its evidence is judged and the verdict carried out
    (matcher/models/trial.py). A bad artefact is refused as at start-up and what serves stays."""
    follower = _Follower(engine, settings)
    while not stop.wait(every):
        try:
            follower.tick()
        except Exception:  # noqa: BLE001 - a registry read error must not stop the service; retried next tick
            logger.exception("checking the model registry failed")


def start_following(engine: MatchEngine, settings: Settings) -> threading.Thread | None:
    """Follow the registry in a daemon thread until the engine closes (none when `model_poll_s` is 0)."""
    if settings.model_poll_s <= 0:
        return None
    thread = threading.Thread(
        target=follow_registry,
        args=(engine, settings, engine.closing),
        kwargs={"every": settings.model_poll_s},
        name="registry-follower",
        daemon=True,
    )
    thread.start()
    return thread


class _Follower:
    """What `follow_registry` remembers between ticks."""

    def __init__(self, engine: MatchEngine, settings: Settings) -> None:
        self.engine, self.settings = engine, settings
        self.registry = ModelRegistry.for_settings(settings)
        self.refused: str | None = None  # an active artefact that failed to load is not retried every tick
        self.trial_refused: str | None = None
        self.encoder_seen = self.registry.active_id("encoder")
        self.last_judged = time.monotonic()

    def tick(self) -> None:
        self._follow_ranker()
        self._follow_trial()
        encoder_active = self.registry.active_id("encoder")
        if encoder_active != self.encoder_seen:
            self.encoder_seen = encoder_active
            _switch_encoder(self.engine, self.settings)

    def _follow_ranker(self) -> None:
        engine = self.engine
        active = self.registry.active_id("ranker")
        if active is None:
            if not isinstance(engine.ranker, TransparentRanker):
                engine.ranker = TransparentRanker()
                logger.info("no active ranker in the registry: serving %s", engine.ranker.version)
        elif active not in (engine.ranker.version, self.refused):
            self.refused = None if install_active_ranker(engine, self.settings) == active else active

    def _follow_trial(self) -> None:
        engine, settings = self.engine, self.settings
        trial = self.registry.trial("ranker")
        wanted = None if trial is None else str(trial["id"])
        if wanted is None:
            if engine.trial is not None:
                _install_trial(engine, settings)  # the trial ended: serve the ranker alone
            self.trial_refused = None
        elif wanted != self.trial_refused:
            # a trial artefact that fails to load is refused once, not logged again every tick
            self.trial_refused = _install_trial(engine, settings)[1]
        if (
            engine.trial is not None
            and settings.trial_check_s > 0
            and time.monotonic() - self.last_judged >= settings.trial_check_s
        ):
            self.last_judged = time.monotonic()
            judge_trial(engine, settings)  # a promotion is served from the next tick on


def _switch_encoder(engine: MatchEngine, settings: Settings) -> None:
    """Load the configured encoder; when it is not the one serving, rebuild the indexes with it and switch."""
    serving = engine.supply.encoder.model_id
    try:
        encoder = load_configured_encoder(settings)
    except EncoderUnavailable as exc:
        logger.error("refusing the new encoder: %s; %s keeps serving", exc.detail, serving)
        return
    if encoder.model_id != serving:
        engine.swap_encoder(encoder)
