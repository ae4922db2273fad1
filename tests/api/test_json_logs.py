"""MATCHER_LOG_FORMAT=json: every log line one JSON object carrying the request's id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from matcher.logs import configure_logging
from matcher.settings import Settings


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def logged_app(settings: Settings) -> TestClient:
    app = create_app(settings, load_engine=False)

    @app.get("/test-log")
    def test_log() -> dict:
        logging.getLogger("parkmatch.test").warning("查询 %s done", "x")
        return {}

    return TestClient(app)


@pytest.mark.usefixtures("restore_root", "engine")
def test_json_lines_carry_the_request_id(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATCHER_LOG_FORMAT", "json")
    configured = Settings(data_dir=settings.data_dir, database_url=settings.database_url)
    assert configured.log_format == "json"
    stream = io.StringIO()
    configure_logging(configured, stream)
    with logged_app(configured) as client:
        r = client.get("/test-log", headers={"X-Request-ID": "req-42"})
        assert r.status_code == 200
        client.get("/test-log")  # a minted id
    logging.getLogger("parkmatch.test").error("outside", exc_info=ValueError("boom"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]  # every line is one JSON object
    ours = [line for line in lines if line["logger"] == "parkmatch.test"]
    assert len(ours) == 3
    first, second, outside = ours
    assert (
        first["request_id"] == "req-42" and first["message"] == "查询 x done" and first["level"] == "WARNING"
    )
    assert first["time"].endswith("+00:00")
    assert second["request_id"] and second["request_id"] != "req-42"
    assert outside["request_id"] is None and "ValueError: boom" in outside["exc_info"]


@pytest.mark.usefixtures("restore_root")
def test_text_is_the_default_and_a_second_configuration_replaces_the_first(settings: Settings) -> None:
    assert settings.log_format == "text"
    first, second = io.StringIO(), io.StringIO()
    configure_logging(settings.model_copy(update={"log_format": "json"}), first)
    configure_logging(settings, second)
    logging.getLogger("parkmatch.test").warning("plain")
    assert first.getvalue() == ""
    assert second.getvalue() == "WARNING parkmatch.test: plain\n"


def test_a_log_format_other_than_text_or_json_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MATCHER_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        Settings()
