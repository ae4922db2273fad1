"""Log lines as text or as one JSON object each (MATCHER_LOG_FORMAT), both carrying the id of the request
being served (the API's X-Request-ID, set through `store.audit.request_scope`)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from matcher.settings import Settings
from matcher.store.audit import current_request_id

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Put the current request's id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id; the exception's
    text as `exc_info` when one is logged."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _ServiceHandler(logging.StreamHandler):
    """The handler `configure_logging` installs (and replaces when called again); without a stream of its own
    it writes to whatever sys.stderr is at the time of the line."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self.follow_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self.follow_stderr:
            self.stream = sys.stderr
        super().emit(record)


def configure_logging(
    settings: Settings, stream: TextIO | None = None, *, keep_existing: bool = False
) -> logging.Handler | None:
    """Send the root logger's records to `stream` (stderr) in the configured format, at the configured level.
    Calling it again replaces the handler it installed before and leaves others alone. `keep_existing`: do
    nothing when the root logger already has handlers of another's (as logging.basicConfig does)."""
    root = logging.getLogger()
    if keep_existing and any(not isinstance(h, _ServiceHandler) for h in root.handlers):
        return None
    for old in [h for h in root.handlers if isinstance(h, _ServiceHandler)]:
        root.removeHandler(old)
    handler = _ServiceHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
    # FAISS logs every CPU-specific build it probes and does not find; only its warnings matter here
    logging.getLogger("faiss.loader").setLevel(max(logging.WARNING, root.level))
    # the server's own loggers (start-up, access lines) go through the same handler
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
