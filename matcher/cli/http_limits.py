"""The uvicorn HTTP protocol `matcher serve` uses: httptools, refusing a request head that outgrows the limit."""

from __future__ import annotations

import json

from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

# room for the request line and framing above the header bytes that MATCHER_MAX_HEADER_BYTES allows
HEAD_SLACK_BYTES = 8_192
_TOO_LARGE = json.dumps(
    {
        "type": "about:blank",
        "title": "Request header fields too large",
        "status": 431,
        "detail": "the request head is larger than this server accepts",
    }
).encode()


def head_limit(max_header_bytes: int) -> int:
    """The bytes of a request head the server reads before refusing it (the app checks the exact limit)."""
    return max_header_bytes + HEAD_SLACK_BYTES


class HeadLimitedHttpTools(HttpToolsProtocol):
    """httptools buffers a header however long it grows; this counts what arrives while a request head is open
    and answers 431 and closes once it passes the limit uvicorn's h11 uses (`h11_max_incomplete_event_size`),
    so one knob bounds both parsers."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._head_limit = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # a chunk that also completed the head is let through: the app's header limit judges it
        if self._in_head and self._head_bytes > self._head_limit and not self.transport.is_closing():
            self.transport.write(
                b"".join(
                    [
                        STATUS_LINE[431],
                        b"content-type: application/problem+json\r\n",
                        b"content-length: " + str(len(_TOO_LARGE)).encode() + b"\r\n",
                        b"connection: close\r\n\r\n",
                        _TOO_LARGE,
                    ]
                )
            )
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0
