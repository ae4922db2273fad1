"""ASGI entry point: `uvicorn api.main:app` serves the app with settings from the environment."""

from api.app import create_app

app = create_app()
