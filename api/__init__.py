"""HTTP API (FastAPI) over the matcher core."""
