"""A match's impressions are durable before its response leaves: feedback right after a match is never refused."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from api.app import create_app
from matcher.domain.tables import Impression
from matcher.settings import Settings

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Message]], Callable[..., Any]], Awaitable[None]
]

TOPICS = ["量子传感器", "锂电池正极材料", "医学影像诊断", "集成电路设计", "生物医药中试"]


class WhenSent:
    """Wraps the app: when the last byte of a /v1/match response is handed to the server, counts the impressions
    already committed for its request_id. (A test client waits for background tasks before it returns, a real
    server does not: this sees what a client that reacts at once would find.)"""

    def __init__(self, app: ASGIApp, db: Engine) -> None:
        self.app, self.db = app, db
        self.seen: list[tuple[str, int, int]] = []  # (request_id, matches listed, impressions committed)

    async def __call__(self, scope: MutableMapping[str, Any], receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/v1/match":
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    served = json.loads(bytes(body))
                    with Session(self.db) as session:
                        stored = session.exec(
                            select(func.count())
                            .select_from(Impression)
                            .where(Impression.request_id == served["request_id"])
                        ).one()
                    self.seen.append((served["request_id"], served["count"], stored))
            await send(message)

        await self.app(scope, receive, watch)


def test_feedback_right_after_each_match_is_accepted(engine_settings: Settings, engine: Engine, headers):
    watcher = WhenSent(create_app(engine_settings), engine)
    with TestClient(watcher) as client:
        for topic in TOPICS:
            body = {"kind": "result", "title": topic, "description": f"{topic}技术成果", "details": {}}
            assert client.post("/v1/resources", json=body, headers=headers["admin"]).status_code == 201
        refused = []
        for i in range(50):
            served = client.post(
                "/v1/match",
                json={"text": TOPICS[i % len(TOPICS)], "k": 3, "min_score": 0},
                headers=headers["admin"],
            ).json()
            assert served["matches"], served
            r = client.post(
                "/v1/feedback",
                json={
                    "request_id": served["request_id"],
                    "resource_id": served["matches"][0]["resource"]["id"],
                    "action": "clicked",
                },
                headers=headers["admin"],
            )
            if r.status_code != 201:
                refused.append(r.text)
    assert refused == []
    assert len(watcher.seen) == 50
    assert all(stored >= listed > 0 for _, listed, stored in watcher.seen), watcher.seen
