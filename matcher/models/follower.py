"""Serving what the registry says: install the active rankers and the rankers on trial (shared, and each
tenant's) into a running engine, and follow the registry (activations, rollbacks, trial verdicts, a new default encoder) while it runs."""

from __future__ import annotations

import logging
import threading
import time

from sqlmodel import Session

from matcher.errors import ValidationFailed
from matcher.matching.engine import MatchEngine, Trial
from matcher.matching.ranker import Ranker, TransparentRanker
from matcher.models.encoder import EncoderUnavailable, load_configured_encoder
from matcher.models.registry import SHARED, ModelRegistry
from matcher.models.trial import TrialVerdict, evaluate_trial
from matcher.settings import Settings

logger = logging.getLogger(__name__)


def _scope_name(scope: str) -> str:
    return "the shared scope" if scope == SHARED else f"tenant {scope}"


def _serving(engine: MatchEngine, scope: str) -> Ranker:
    """The ranker `scope`'s lists are ranked by: the shared one, or the tenant's (falling back to the shared)."""
    return engine.ranker if scope == SHARED else engine.ranker_for(scope)


def install_active_ranker(engine: MatchEngine, settings: Settings) -> str:
    """Put the registry's active rankers into `engine`: the shared one and each tenant's; on a bad artefact log
    why and keep what serves that scope. Returns the version the engine serves the shared scope afterwards."""
    registry = ModelRegistry.for_settings(settings)
    for scope in {SHARED, *registry.scopes()}:
        _install_ranker(engine, registry, scope, keep_default=True)
    return str(engine.ranker.version)


def _install_ranker(engine: MatchEngine, registry: ModelRegistry, scope: str, *, keep_default: bool) -> str:
    """Serve `scope` its active ranker (a bad artefact is refused and what serves stays). With none active, a
    tenant is served the shared ranker again, and the shared scope the transparent default unless
    `keep_default` (at start the engine's own ranker stays). Returns the version serving `scope` afterwards."""
    try:
        est = registry.load_active("ranker", scope=scope)
    except ValidationFailed as exc:
        logger.error(
            "refusing the active ranker of %s: %s; %s keeps serving",
            _scope_name(scope),
            exc.detail,
            _serving(engine, scope).version,
        )
        return str(_serving(engine, scope).version)
    if scope != SHARED:
        engine.set_tenant_ranker(scope, est)
    elif est is not None:
        engine.ranker = est  # one attribute assignment: requests in flight finish with the ranker they read
    elif not keep_default and not isinstance(engine.ranker, TransparentRanker):
        engine.ranker = TransparentRanker()
    if est is not None:
        logger.info("serving ranker %s to %s", est.version, _scope_name(scope))
    return str(_serving(engine, scope).version)


def install_trial(engine: MatchEngine, settings: Settings) -> str | None:
    """Serve the registry's ranker trials (each interleaved, in its scope, with the ranker that scope is
    served) or stop serving them.

    A trial is served only while its scope's ranker is the one it is compared with; a trial artefact that
    fails to load is logged and not served. Returns the version on trial in the shared scope afterwards."""
    registry = ModelRegistry.for_settings(settings)
    for scope in {SHARED, *registry.scopes(), *engine.tenant_trials}:
        _install_trial(engine, settings, registry, scope)
    return None if engine.trial is None else str(engine.trial.ranker.version)


def serve_scope(engine: MatchEngine, settings: Settings, scope: str) -> str:
    """After a change in `scope` (activation, rollback, trial started or stopped): serve it what the registry
    says, now. Returns the version serving `scope`."""
    registry = ModelRegistry.for_settings(settings)
    version = _install_ranker(engine, registry, scope, keep_default=False)
    _install_trial(engine, settings, registry, scope)
    return version


def _set_trial(engine: MatchEngine, scope: str, trial: Trial | None) -> None:
    if scope == SHARED:
        engine.trial = trial
    else:
        engine.set_tenant_trial(scope, trial)


def _trial_of(engine: MatchEngine, scope: str) -> Trial | None:
    return engine.trial if scope == SHARED else engine.tenant_trials.get(scope)


def _install_trial(
    engine: MatchEngine, settings: Settings, registry: ModelRegistry, scope: str
) -> tuple[str | None, str | None]:
    """Serve `scope`'s trial (or none); returns (the version on trial there, the id of a trial artefact refused
    at load, else None)."""
    t = registry.trial("ranker", scope=scope)
    current = _trial_of(engine, scope)
    serving = _serving(engine, scope).version
    if t is None or t.get("incumbent") != str(serving) or settings.trial_share <= 0:
        if current is not None:
            _set_trial(engine, scope, None)
            logger.info("no ranker trial to serve to %s: serving %s alone", _scope_name(scope), serving)
        return None, None
    if current is not None and current.ranker.version == t["id"]:
        return str(t["id"]), None
    try:
        est = registry.load(str(t["id"]))
    except ValidationFailed as exc:
        logger.error("refusing the ranker on trial for %s: %s", _scope_name(scope), exc.detail)
        _set_trial(engine, scope, None)
        return None, str(t["id"])
    _set_trial(engine, scope, Trial(est, float(settings.trial_share)))
    logger.info("ranker %s on interleaved trial against %s for %s", est.version, serving, _scope_name(scope))
    return str(est.version), None


def judge_trial(engine: MatchEngine, settings: Settings, scope: str = SHARED) -> TrialVerdict | None:
    """Judge `scope`'s running trial on the store's feedback and carry out the verdict (see
    matcher/models/trial.py)."""
    registry = ModelRegistry.for_settings(settings)
    with Session(engine.db) as session:
        return evaluate_trial(session, registry, scope=scope, planned=settings.trial_votes)


def follow_registry(engine: MatchEngine, settings: Settings, stop: threading.Event, *, every: float) -> None:
    """Until `stop` is set, check the registry every `every` seconds and serve what is active there, in every
    scope (the shared one and each tenant's): the ranker activated or rolled back by `matcher train ranker`, the API of another worker, or by hand; and, when an
    encoder is activated (`matcher train encoder` installs it as the default), the configured encoder, switched
    in without stopping (`MatchEngine.swap_encoder`). A ranker put on trial is interleaved with the one its
    scope is served, and every `settings.trial_check_s` its evidence is judged and the verdict carried out
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
        # per scope: an artefact that failed to load is not retried (nor logged again) every tick
        self.refused: dict[str, str] = {}
        self.trial_refused: dict[str, str] = {}
        self.encoder_seen = self.registry.active_id("encoder")
        self.last_judged = time.monotonic()

    def tick(self) -> None:
        engine = self.engine
        known = set(self.registry.scopes())
        for scope in {SHARED, *known, *engine.tenant_rankers}:
            self._follow_ranker(scope)
        due = self.settings.trial_check_s > 0 and (
            time.monotonic() - self.last_judged >= self.settings.trial_check_s
        )
        judged = [self._follow_trial(scope, judge=due) for scope in {SHARED, *known, *engine.tenant_trials}]
        if any(judged):
            self.last_judged = time.monotonic()
        encoder_active = self.registry.active_id("encoder")
        if encoder_active != self.encoder_seen:
            self.encoder_seen = encoder_active
            _switch_encoder(self.engine, self.settings)

    def _follow_ranker(self, scope: str) -> None:
        engine = self.engine
        active = self.registry.active_id("ranker", scope=scope)
        own = engine.ranker if scope == SHARED else engine.tenant_rankers.get(scope)
        if active is None:
            if scope == SHARED and not isinstance(engine.ranker, TransparentRanker):
                engine.ranker = TransparentRanker()
                logger.info("no active shared ranker in the registry: serving %s", engine.ranker.version)
            elif scope != SHARED and own is not None:
                engine.set_tenant_ranker(scope, None)
                logger.info("no active ranker of tenant %s: serving it the shared one", scope)
        elif active not in ((own.version if own is not None else None), self.refused.get(scope)):
            installed = _install_ranker(engine, self.registry, scope, keep_default=False)
            if installed == active:
                self.refused.pop(scope, None)
            else:
                self.refused[scope] = active

    def _follow_trial(self, scope: str, *, judge: bool) -> bool:
        """Serve `scope`'s trial as the registry says; with `judge`, judge it when served. True if judged."""
        engine, settings = self.engine, self.settings
        trial = self.registry.trial("ranker", scope=scope)
        wanted = None if trial is None else str(trial["id"])
        if wanted is None:
            if _trial_of(engine, scope) is not None:
                _install_trial(engine, settings, self.registry, scope)  # the trial ended: the ranker alone
            self.trial_refused.pop(scope, None)
        elif wanted != self.trial_refused.get(scope):
            # a trial artefact that fails to load is refused once, not logged again every tick
            refused = _install_trial(engine, settings, self.registry, scope)[1]
            if refused is None:
                self.trial_refused.pop(scope, None)
            else:
                self.trial_refused[scope] = refused
        if judge and _trial_of(engine, scope) is not None:
            judge_trial(engine, settings, scope)  # a promotion is served from the next tick on
            return True
        return False


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
