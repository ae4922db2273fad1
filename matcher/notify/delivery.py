"""Signed webhook deliveries: one row per event and subscription, each attempt logged, exponential backoff,
a hard timeout per request (a receiver that hangs is cut off), the URL re-checked before every attempt."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from matcher.errors import ValidationFailed
from matcher.notify.signing import HEADER, sign
from matcher.notify.tables import WebhookDelivery, WebhookSubscription
from matcher.notify.urls import validate_webhook_url
from matcher.settings import Settings

logger = logging.getLogger(__name__)
EVENTS = ("match.created",)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookDispatcher:
    def __init__(
        self,
        settings: Settings,
        db: Engine,
        *,
        max_attempts: int = 5,
        backoff_s: float = 2.0,
        background: bool = True,
        workers: int = 2,
    ) -> None:
        self.settings = settings
        self.db = db
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="webhook") if background else None
        )
        self._futures: set[Future[Any]] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ scheduling
    def submit(self, fn: Any, *args: Any) -> None:
        """Run now (foreground) or on the worker pool; failures are logged, never raised to the caller."""
        if self._pool is None:
            fn(*args)
            return
        fut = self._pool.submit(fn, *args)
        with self._lock:
            self._futures.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: Future[Any]) -> None:
        with self._lock:
            self._futures.discard(fut)
        if fut.exception() is not None:
            logger.error("webhook work failed: %r", fut.exception())

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for queued work (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pending = list(self._futures)
            if not pending or time.monotonic() > deadline:
                return
            for fut in pending:
                try:
                    fut.result(timeout=max(0.0, deadline - time.monotonic()))
                except Exception:  # noqa: BLE001 - already logged in _done
                    pass

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)

    # ------------------------------------------------------------------ events
    def enqueue(self, tenant: str, event: str, data: dict[str, Any]) -> list[int]:
        """Record one delivery per active subscription of `tenant` to `event`, and start delivering them."""
        event_id = uuid.uuid4().hex
        payload = {"id": event_id, "type": event, "created": datetime.now(UTC).isoformat(), "data": data}
        with Session(self.db, expire_on_commit=False) as session:
            subs = session.exec(
                select(WebhookSubscription).where(
                    WebhookSubscription.tenant_id == tenant,
                    WebhookSubscription.active == True,  # noqa: E712
                )
            ).all()
            rows = [
                WebhookDelivery(subscription_id=s.id, event_id=event_id, event=event, payload=payload)
                for s in subs
                if event in (s.events or [])
            ]
            session.add_all(rows)
            session.commit()
            ids = [r.id for r in rows]
        for delivery_id in ids:
            self._start(delivery_id)
        return ids

    def _start(self, delivery_id: int) -> None:
        """With a broker (MATCHER_BROKER_URL) a delivery is a task whose retries are delayed tasks, so they
        survive a restart of this process; without one, or while the broker is down, it runs on the pool."""
        if self.settings.broker_url:
            from matcher.jobs.app import configure
            from matcher.jobs.enqueue import BrokerUnavailable, send

            configure(self.settings)
            try:
                send("parkmatch.webhook", [delivery_id])
                return
            except BrokerUnavailable as exc:
                logger.warning("webhook delivery %s runs in process: %s", delivery_id, exc.detail)
        self.submit(self.deliver, delivery_id)

    def resume_pending(self) -> list[int]:
        """Start again every delivery still pending (the service stopped between its attempts); each goes on
        from the attempts it already made, so a delivery never gets more than `max_attempts`."""
        with Session(self.db) as session:
            ids = list(
                session.exec(
                    select(WebhookDelivery.id)
                    .where(WebhookDelivery.status == "pending")
                    .order_by(WebhookDelivery.id)
                )
            )
        for delivery_id in ids:
            self._start(delivery_id)
        if ids:
            logger.info("resuming %d pending webhook deliveries", len(ids))
        return ids

    def deliver(self, delivery_id: int) -> WebhookDelivery:
        """Attempt until delivered or out of attempts, sleeping backoff * 2**(n-1) between attempts."""
        with Session(self.db, expire_on_commit=False) as session:
            row = session.get(WebhookDelivery, delivery_id)
            sub = session.get(WebhookSubscription, row.subscription_id) if row else None
            if row is None or sub is None:
                raise LookupError(f"webhook delivery {delivery_id} not found")
            body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            while row.status == "pending" and row.attempts < self.max_attempts:
                entry = self._attempt(sub, row, body)
                self._record(row, entry)
                session.add(row)
                session.commit()
                if row.status == "pending":
                    time.sleep(self.backoff_s * 2 ** (row.attempts - 1))
            return row

    def attempt_once(self, delivery_id: int) -> tuple[str, float | None]:
        """One attempt of a pending delivery (a queued task's step): its status after it and, while it stays
        pending, the delay before the next. A delivery that is not pending (delivered, failed, or out of
        attempts) is left as it is: running this twice never posts a delivered event again."""
        with Session(self.db, expire_on_commit=False) as session:
            row = session.get(WebhookDelivery, delivery_id)
            sub = session.get(WebhookSubscription, row.subscription_id) if row else None
            if row is None or sub is None:
                return "missing", None
            if row.status != "pending" or row.attempts >= self.max_attempts:
                return row.status, None
            body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            entry = self._attempt(sub, row, body)
            self._record(row, entry)
            session.add(row)
            session.commit()
            delay = self.backoff_s * 2 ** (row.attempts - 1) if row.status == "pending" else None
            return row.status, delay

    def _record(self, row: WebhookDelivery, entry: dict[str, Any]) -> None:
        """One attempt's outcome on its row: the log, the last status, and delivered or failed when final."""
        row.attempts += 1
        row.log = [*(row.log or []), entry]
        row.last_status_code = entry.get("status_code")
        row.last_error = entry.get("error")
        if entry["ok"]:
            row.status, row.delivered_at = "delivered", datetime.now(UTC)
        elif entry.get("final") or row.attempts >= self.max_attempts:
            row.status = "failed"

    def _attempt(self, sub: WebhookSubscription, row: WebhookDelivery, body: bytes) -> dict[str, Any]:
        started = time.perf_counter()
        entry: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "ok": False}
        try:
            validate_webhook_url(sub.url, allow_private=self.settings.webhook_allow_private)
        except ValidationFailed as exc:
            entry.update(error=exc.detail, final=True)
            return entry
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "parkmatch-webhooks/1",
            HEADER: sign(sub.secret, body),
            "X-Parkmatch-Event": row.event,
            "X-Parkmatch-Delivery": row.event_id,
        }
        try:
            with httpx.Client(
                timeout=self.settings.webhook_timeout, follow_redirects=False, trust_env=False
            ) as client:
                resp = client.post(sub.url, content=body, headers=headers)
            entry["status_code"] = resp.status_code
            entry["ok"] = 200 <= resp.status_code < 300
            if not entry["ok"]:
                entry["error"] = f"HTTP {resp.status_code}"
        except httpx.TimeoutException as exc:
            entry["error"] = f"timeout after {self.settings.webhook_timeout:g}s ({type(exc).__name__})"
        except httpx.HTTPError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry["ms"] = round((time.perf_counter() - started) * 1000, 1)
        return entry
