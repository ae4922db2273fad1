"""The officer workbench (/ui) and the pages enterprises open from their digests (/p): server-rendered Jinja
templates with htmx for in-place updates, every script and style served by the app itself."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install_ui(app: FastAPI) -> None:
    """Mount the workbench, the enterprise pages, their static files and the offline API docs on `app`
    (after the API's error handlers, which the page errors wrap)."""
    from api.ui import (
        account,
        auth,
        chains,
        cultivation,
        curation,
        docs,
        errors,
        events,
        exports,
        importing,
        overview,
        public,
        record_exports,
        records,
        resources,
        search,
    )

    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    for module in (
        auth,
        search,
        curation,
        records,
        resources,
        importing,
        exports,
        record_exports,
        overview,
        chains,
        events,
        cultivation,
        account,
    ):
        app.include_router(module.router, prefix="/ui", include_in_schema=False)
    app.include_router(public.router, prefix="/p", include_in_schema=False)
    docs.install_docs(app)
    errors.install_page_errors(app)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/search", status_code=303)

    @app.get("/ui", include_in_schema=False)
    def workbench() -> RedirectResponse:
        return RedirectResponse("/ui/search", status_code=303)
