"""create_app(settings): a fresh FastAPI app over the framework-free core; the lifespan owns the heavy state."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.middleware import install_middleware
from api.routes import routers
from api.state import AppState
from matcher.domain.taxonomy import default_taxonomy
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine
from matcher.store.events import ChangeHub

logger = logging.getLogger(__name__)

# hooks run at start-up after the store is ready, in order: (state) -> None; e.g. loading the match engine
STARTUP_HOOKS: list[str] = [
    "api.engine_hook:start_engine",
    "api.routes.digests:start_notifications",
]


def _run_hooks(state: AppState) -> None:
    import importlib

    for spec in STARTUP_HOOKS:
        mod_name, fn_name = spec.split(":")
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name == mod_name:
                continue
            raise
        getattr(mod, fn_name)(state)


def create_app(settings: Settings | None = None, *, load_engine: bool = True) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = make_engine(settings)
        init_db(db)
        state = AppState(settings=settings, db=db, hub=ChangeHub(), taxonomy=default_taxonomy())
        app.state.app_state = state
        if load_engine:
            _run_hooks(state)
        state.ready = True
        try:
            yield
        finally:
            closer = getattr(state.matcher, "close", None)
            if closer is not None:
                closer()
            db.dispose()

    app = FastAPI(
        title="parkmatch",
        version="0.1.0",
        description="Matches park enterprises and their needs with research results, application scenarios, "
        "funds and incubators; and scenarios back to enterprises. 园区企业需求与科技成果、应用场景、基金、孵化器的智能匹配。",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_middleware(app, settings)
    for router, prefix in routers():
        app.include_router(router, prefix=prefix)
    return app
