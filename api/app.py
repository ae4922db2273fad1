"""create_app(settings): a fresh FastAPI app over the framework-free core; the lifespan owns the heavy state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from api.errors import PROBLEM_RESPONSES, add_problem_schema, install_error_handlers
from api.feed import SeqHeaderMiddleware, declare_seq_header
from api.metrics import ServiceMetrics
from api.middleware import install_middleware
from api.query import declared_query_only
from api.routes import routers
from api.setting_bounds import state_setting_bounds
from api.state import AppState
from api.ui import install_ui
from matcher.domain.taxonomy import default_taxonomy
from matcher.domain.text import NOT_BLANK_LINE, SINGLE_LINE
from matcher.matching.engine import MatchEngine
from matcher.models.encoder import load_configured_encoder
from matcher.models.follower import install_active_ranker, install_trial, start_following
from matcher.notify.delivery import WebhookDispatcher
from matcher.notify.listener import StandingMatchListener
from matcher.settings import Settings
from matcher.store.db import make_engine
from matcher.store.events import ChangeHub
from matcher.store.schema import check_revision


def start_engine(state: AppState) -> MatchEngine:
    """Load the encoder, the registry's models and the indexes; the engine follows store changes and the registry."""
    engine = MatchEngine(state.settings, state.db, state.taxonomy, load_configured_encoder(state.settings))
    install_active_ranker(engine, state.settings)  # a corrupt artefact is refused; the default keeps serving
    install_trial(engine, state.settings)
    engine.start(follow=True)  # the store's change feed: writes of other replicas and of `matcher import`
    state.hub.subscribe(engine)
    state.matcher = engine
    start_following(engine, state.settings)
    return engine


def start_notifications(state: AppState, engine: MatchEngine) -> None:
    """Standing-match webhooks follow resource changes; deliveries cut off by a stop between attempts carry on."""
    dispatcher = WebhookDispatcher(state.settings, state.db)
    state.webhooks = dispatcher
    dispatcher.resume_pending()
    state.hub.subscribe(StandingMatchListener(engine, state.db, state.settings, dispatcher))


def create_app(settings: Settings | None = None, *, load_engine: bool = True) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = make_engine(settings)
        try:  # a new store is created, one made before revisions adopted; another revision is refused
            check_revision(db)
        except Exception:
            db.dispose()
            raise
        state = AppState(
            settings=settings, db=db, hub=ChangeHub(), taxonomy=default_taxonomy(), metrics=metrics
        )
        app.state.app_state = state
        if load_engine:
            start_notifications(state, start_engine(state))
        state.ready = True
        try:
            yield
        finally:
            if state.matcher is not None:
                state.matcher.close()
            db.dispose()

    app = FastAPI(
        title="parkmatch",
        version="0.1.0",
        description="Matches park enterprises and their needs with research results, application scenarios, "
        "funds and incubators; and scenarios back to enterprises. 园区企业需求与科技成果、应用场景、基金、孵化器的智能匹配。",
        lifespan=lifespan,
        docs_url=None,  # served offline by install_ui, from a package's files
        redoc_url=None,
    )
    metrics = ServiceMetrics(lambda: app.state.app_state.matcher if hasattr(app.state, "app_state") else None)
    app.state.metrics = metrics
    metrics.watch_jobs(lambda: getattr(app.state, "app_state", None))
    install_error_handlers(app)
    app.add_middleware(SeqHeaderMiddleware)  # innermost: sees the request's sessions once the route committed
    install_middleware(app, settings, metrics)
    for router, prefix in routers():
        # the probes outside /v1 answer only their own statuses; every /v1 operation may answer a problem
        app.include_router(
            router,
            prefix=prefix,
            responses=PROBLEM_RESPONSES if prefix == "/v1" else None,
            dependencies=[Depends(declared_query_only)],
        )
    install_ui(app)
    install_openapi(app, settings)
    return app


# the store refuses a NUL character anywhere in a record's text (PostgreSQL text cannot hold it): the patterns the
# models declare, each with NUL excluded too (a pattern not listed here is left as it is)
NO_NUL = r"^[^\x00]*$"
WITHOUT_NUL = {
    SINGLE_LINE: r"^[^\r\n\x00]*$",
    NOT_BLANK_LINE: r"^[^\r\n\x00]*[^\s\x00][^\r\n\x00]*$",
}
RECORD_PATHS = ("/v1/enterprises", "/v1/needs", "/v1/resources")


def declare_record_text(openapi: dict[str, Any]) -> dict[str, Any]:
    """Say in the document what the store enforces: no string of a record body holds NUL (a rule the models
    leave to the store, so that an API body and an imported row get the same message)."""
    schemas = openapi.get("components", {}).get("schemas", {})
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for v in node:
                walk(v)
        if not isinstance(node, dict):
            return
        if ref := node.get("$ref"):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                walk(schemas.get(name, {}))
            return
        if node.get("type") == "string" and not {"enum", "const", "format"} & node.keys():
            if "pattern" not in node:
                node["pattern"] = NO_NUL
            elif node["pattern"] in WITHOUT_NUL:
                node["pattern"] = WITHOUT_NUL[node["pattern"]]
        for v in node.values():
            walk(v)

    for path, item in openapi.get("paths", {}).items():
        if path.startswith(RECORD_PATHS):
            for method in ("post", "patch", "put"):
                walk(item.get(method, {}).get("requestBody"))
    return openapi


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """The generated document, with the Problem schema that every problem response refers to and the bounds the
    app's settings give."""

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            app.openapi_schema = state_setting_bounds(
                declare_seq_header(declare_record_text(add_problem_schema(document))), settings
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
