"""ASGI entry point: `uvicorn api.main:app` serves the app with settings from the environment, logging in the
configured format (each worker process configures its own)."""

from api.app import create_app
from matcher.logs import configure_logging
from matcher.settings import Settings

settings = Settings()
configure_logging(settings)
app = create_app(settings)
