"""Prometheus metrics of one app: request latency and counts per route template, match stage timings, index sizes
and digest outcomes. Labels name route templates, methods, statuses, stages and sides only, never a raw path, a
tenant or a record, so the unauthenticated /metrics reveals no tenant's data."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from matcher.matching.engine import MatchEngine
from matcher.matching.pipeline import MatchOutcome

UNMATCHED = "unmatched"  # a request no route answered (404, or refused by a limit before routing)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
DIGEST_OUTCOMES = ("sent", "skipped", "empty", "failed", "retry_later", "already_done")


class IndexSizes:
    """Records in the engine's indexes, read at scrape time (nothing while the engine is not loaded)."""

    def __init__(self, engine: Callable[[], MatchEngine | None]) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "parkmatch_index_records", "Records in the match indexes, per side", labels=["side"]
        )
        engine = self.engine()
        if engine is not None:
            gauge.add_metric(["resources"], len(engine.resources))
            gauge.add_metric(["demand"], len(engine.demand_catalog))
        yield gauge


class TeacherCoverage:
    """The teacher tier's share of records with a current teacher vector and its queue, per side (nothing while
    the tier is off)."""

    def __init__(self, engine: Callable[[], MatchEngine | None]) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        engine = self.engine()
        indexer = getattr(engine, "indexer", None)
        coverage = indexer.teacher_coverage() if indexer is not None else None
        if not coverage:
            return
        share = GaugeMetricFamily(
            "parkmatch_teacher_coverage",
            "Share of records scored by the teacher tier, per side",
            labels=["side"],
        )
        queued = GaugeMetricFamily(
            "parkmatch_teacher_queued",
            "Records waiting for the teacher tier's embedding, per side",
            labels=["side"],
        )
        for side, c in coverage.items():
            share.add_metric([side], float(c["coverage"]))
            queued.add_metric([side], float(c["queued"]))
        yield share
        yield queued


class FeedPosition:
    """Where this replica stands on the store's change feed, read at scrape time: the seq it applied, the log's
    head, how far behind (entries and seconds), and the gaps it found (each answered by a rebuild)."""

    def __init__(self, engine: Callable[[], MatchEngine | None]) -> None:
        self.engine = engine

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        engine = self.engine()
        follower = getattr(engine, "follower", None)
        if follower is None:
            return
        try:
            status = follower.status()
        except Exception:  # noqa: BLE001 - a store that does not answer: the scrape shows nothing of the feed
            return
        for name, doc, value in (
            (
                "parkmatch_feed_applied_seq",
                "Change-feed seq this replica has applied everything up to",
                status.applied,
            ),
            ("parkmatch_feed_head_seq", "Last seq in the store's change feed", status.head),
            (
                "parkmatch_feed_lag_entries",
                "Change-feed entries this replica has not applied yet",
                status.lag,
            ),
            (
                "parkmatch_feed_lag_seconds",
                "Age of the oldest change-feed entry not applied yet",
                status.lag_seconds,
            ),
        ):
            gauge = GaugeMetricFamily(name, doc)
            gauge.add_metric([], value)
            yield gauge
        gaps = CounterMetricFamily(
            "parkmatch_feed_gaps", "Gaps found in the change feed (each answered by a rebuild from the store)"
        )
        gaps.add_metric([], status.gaps)
        yield gaps


class JobFigures:
    """Background jobs, read at scrape time and reused for MATCHER_JOB_QUEUE_DEPTH_CACHE_S: jobs ended per kind
    and outcome, from the `job` table (so every replica reports the cluster's figures) and the webhook
    deliveries, and the depth of the task queue as the broker says it. No label names a tenant."""

    def __init__(self, state: Callable[[], object | None]) -> None:
        self.state = state
        self._cache: tuple[float, list[Metric]] | None = None
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        state = self.state()
        if state is None:
            return
        settings = state.settings  # type: ignore[attr-defined]
        with self._lock:
            if (
                self._cache is not None
                and time.monotonic() - self._cache[0] < settings.job_queue_depth_cache_s
            ):
                yield from self._cache[1]
                return
            figures = self._read(state)
            self._cache = (time.monotonic(), figures)
        yield from figures

    def _read(self, state: object) -> list[Metric]:
        from sqlalchemy import func
        from sqlmodel import Session, col, select

        from matcher.jobs.tables import Job
        from matcher.notify.tables import WebhookDelivery

        out: list[Metric] = []
        total = CounterMetricFamily(
            "parkmatch_jobs", "Background jobs ended, per kind and outcome", labels=["kind", "outcome"]
        )
        try:
            with Session(state.db) as session:  # type: ignore[attr-defined]
                rows = session.exec(
                    select(Job.kind, Job.state, func.count())
                    .where(col(Job.state).in_(["succeeded", "failed"]))
                    .group_by(Job.kind, Job.state)
                ).all()
                hooks = session.exec(
                    select(WebhookDelivery.status, func.count())
                    .where(col(WebhookDelivery.status).in_(["delivered", "failed"]))
                    .group_by(WebhookDelivery.status)
                ).all()
        except Exception:  # noqa: BLE001 - a store that does not answer: no job figures this scrape
            rows, hooks = [], []
        for kind, outcome, count in rows:
            total.add_metric([kind, outcome], count)
        for status, count in hooks:
            total.add_metric(["webhook", "succeeded" if status == "delivered" else "failed"], count)
        out.append(total)
        settings = state.settings  # type: ignore[attr-defined]
        if settings.broker_url:
            from matcher.jobs.app import queue_depth

            depth = queue_depth(settings)
            if depth is not None:
                gauge = GaugeMetricFamily(
                    "parkmatch_job_queue_depth", "Task messages waiting in the broker's queue"
                )
                gauge.add_metric([], depth)
                out.append(gauge)
        return out


class ServiceMetrics:
    """One registry per app (tests build many apps in one process)."""

    def __init__(self, engine: Callable[[], MatchEngine | None]) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "parkmatch_http_request_duration_seconds",
            "Time to answer a request, per route template",
            ["method", "route"],
            registry=self.registry,
        )
        self.requests = Counter(
            "parkmatch_http_requests",
            "Requests answered, per route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.stages = Histogram(
            "parkmatch_match_stage_seconds",
            "Time spent in each stage of the match pipeline",
            ["direction", "stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.digests = Counter(
            "parkmatch_digest_outcomes",
            "Digests per outcome of the runs started through the API",
            ["outcome"],
            registry=self.registry,
        )
        self.registry.register(IndexSizes(engine))  # type: ignore[arg-type]
        self.registry.register(FeedPosition(engine))  # type: ignore[arg-type]
        self.registry.register(TeacherCoverage(engine))  # type: ignore[arg-type]

    def watch_jobs(self, state: Callable[[], object | None]) -> None:
        self.registry.register(JobFigures(state))  # type: ignore[arg-type]

    def observe_match(self, outcome: MatchOutcome, direction: str) -> None:
        for stage, ms in outcome.timings_ms.items():
            self.stages.labels(direction, stage).observe(ms / 1000)

    def observe_digests(self, report: object) -> None:
        for outcome in DIGEST_OUTCOMES:
            if count := getattr(report, outcome, 0):
                self.digests.labels(outcome).inc(count)


def route_template(scope: Scope, root_path: str) -> str:
    """The path template of the route that answered (`/v1/resources/{resource_id}`), never the raw path: the
    route's own template under the prefix its router was included with (FastAPI keeps the whole template in
    the route context it selected), else under the prefixes mounts added to `root_path`."""
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if isinstance(template, str) and template:
        return template
    route = scope.get("route")
    path = getattr(route, "path", None) if route is not None else None
    if not isinstance(path, str) or not path:
        return UNMATCHED
    return str(scope.get("root_path", ""))[len(root_path) :] + path


class MetricsMiddleware:
    """Time every HTTP request and count it by route template and status."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        root_path = str(scope.get("root_path", ""))
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route, method = route_template(scope, root_path), scope["method"]
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)
            self.metrics.requests.labels(method, route, str(status)).inc()
