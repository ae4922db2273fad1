"""The Celery app: configured from Settings (MATCHER_BROKER_URL, RabbitMQ or Redis), late acks, one task
prefetched per worker process, JSON only. Every task message carries the sender's code version (package version
and schema revision) in a header; a worker of another version refuses it (see tasks.JobTask)."""

from __future__ import annotations

import logging
from functools import cache

from celery import Celery
from kombu import Connection

from matcher.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_QUEUE = "parkmatch"
VERSION_HEADER = "pm_version"

celery_app = Celery("parkmatch", include=["matcher.jobs.tasks"])


def broker_url(settings: Settings) -> str:
    return settings.broker_url or DEFAULT_BROKER


@cache
def code_version() -> str:
    """This code's version as workers compare it: the package version and the schema revision it expects."""
    from importlib.metadata import PackageNotFoundError, version

    from matcher.store.schema import head

    try:
        package = version("parkmatch")
    except PackageNotFoundError:  # pragma: no cover - a source tree without an install
        package = "0"
    return f"{package}+{head()}"


def configure(settings: Settings, *, queue: str | None = None) -> Celery:
    """Point the app at the settings' broker (idempotent; the API, the CLI and the worker each call it). The
    queue stays what it was unless `queue` is given (tests use one of their own)."""
    if queue is None:
        queue = getattr(celery_app.conf, "pm_queue", None) or DEFAULT_QUEUE
    celery_app.conf.pm_queue = queue
    if celery_app.conf.broker_url not in (None, broker_url(settings)):
        _reset_connections()
    celery_app.conf.update(
        broker_url=broker_url(settings),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=queue,
        broker_connection_retry_on_startup=False,
        broker_connection_timeout=3,
        broker_transport_options={"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    # a delayed task (webhook retries) stays unacknowledged in a worker until its time: Redis must not hand it to
    # another worker meanwhile (its visibility timeout; RabbitMQ waits for the ack anyway)
    if broker_url(settings).startswith("redis"):
        celery_app.conf.broker_transport_options = {"visibility_timeout": 6 * 3600, "max_retries": 1}
    celery_app.conf.pm_settings = settings
    return celery_app


def _reset_connections() -> None:
    """Drop the pooled broker connections (the broker URL changed: a process configured twice, as tests are)."""
    # only forgotten, not closed: kombu keeps producer pools per URL in a registry of its own and hands the same
    # one out again when the URL comes back
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def broker_reachable(settings: Settings, timeout: float = 2.0) -> str | None:
    """None when the broker answers; else why not, in one line."""
    try:
        with Connection(broker_url(settings), connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        return None
    except Exception as exc:  # noqa: BLE001 - any failure to connect is reported the same way
        return f"{type(exc).__name__}: {exc}"


def queue_depth(settings: Settings, queue: str | None = None, timeout: float = 1.0) -> int | None:
    """Messages waiting in the queue, as the broker says (None when it does not answer)."""
    queue = queue or getattr(celery_app.conf, "pm_queue", None) or DEFAULT_QUEUE
    try:
        with Connection(broker_url(settings), connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
            ok = conn.default_channel.queue_declare(queue=queue, passive=True)
            return int(ok.message_count)
    except Exception:  # noqa: BLE001 - no figure rather than a failed scrape (a queue not declared yet too)
        return None
