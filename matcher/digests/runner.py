"""Exactly-once digest runs: the log row (items, pending) is written before sending, marked sent after.

A re-run of a period sends nothing new; a crash or an SMTP failure is resumed by the next run, which sends only
what was not sent; a failing address is retried with exponential backoff up to `max_attempts`, then marked failed;
one failure never stops the run for the others.

Sending claims a row first: one conditional UPDATE moves it from 'pending' to 'sending' and stamps `claimed_at`,
so of two runs (two task workers, a task delivered twice) only one sends it. A 'sending' row is never re-sent:
while its claim is younger than the lease (MATCHER_DIGEST_LEASE_S) another run may be sending it now and it is
left alone; past the lease its worker died between the claim and recording the outcome, the SMTP server may or
may not have accepted the message, and the row is marked 'unconfirmed' and reported instead of being sent again.
This guarantees that no digest is ever sent twice; an unconfirmed one is for an operator to check."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from matcher.digests.compose import (
    Digest,
    DigestComposer,
    DigestItem,
    ineligible_reason,
    language_of,
    period_of,
)
from matcher.digests.render import RenderedDigest, render_digest
from matcher.digests.send import (
    EmailSender,
    OutcomeUnknown,
    SendError,
    build_message,
    new_message_id,
    unsubscribe_mailto,
)
from matcher.digests.tokens import make_unsubscribe_token, make_view_token
from matcher.domain.tables import DigestLog, Enterprise, as_utc
from matcher.settings import Settings
from matcher.store import audit

logger = logging.getLogger(__name__)

EMAIL_PROBLEMS = ("no email address", "invalid email address")
RESUME_WINDOW = timedelta(days=8)  # pending rows older than this are stale news, not retried


@dataclass
class RunReport:
    period: str
    dry_run: bool = False
    sent: int = 0
    skipped: int = 0
    empty: int = 0
    failed: int = 0
    retry_later: int = 0
    already_done: int = 0
    in_flight: int = 0  # claimed by another run whose lease has not expired
    unconfirmed: int = 0  # claimed by a run that died before recording the outcome: not re-sent
    errors: list[dict[str, Any]] = field(default_factory=list)
    previews: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def unsubscribe_url(settings: Settings, token: str) -> str:
    """RFC 8058's one-click target (List-Unsubscribe): a POST here unsubscribes."""
    return f"{settings.public_url.rstrip('/')}/v1/unsubscribe?token={token}"


def unsubscribe_page_url(settings: Settings, token: str) -> str:
    """The email body's link: a page that asks first (/p/unsubscribe)."""
    return f"{settings.public_url.rstrip('/')}/p/unsubscribe?token={token}"


def resource_page_url(settings: Settings, enterprise_id: int, resource_id: int) -> str:
    """A digest item's link: the resource's public page for this enterprise, signed and expiring (/p/r/...)."""
    token = make_view_token(
        enterprise_id, resource_id, settings.resolved_secret(), ttl_s=settings.resource_link_days * 86400
    )
    return f"{settings.public_url.rstrip('/')}/p/r/{token}"


def _takes_mark(sender: object) -> bool:
    import inspect

    try:
        return "mark" in inspect.signature(sender.send).parameters  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False


class DigestRunner:
    def __init__(
        self,
        settings: Settings,
        db: Engine,
        composer: DigestComposer,
        sender: EmailSender,
        *,
        max_attempts: int = 4,
        backoff_s: float = 900.0,
        chunk: int = 1000,
        lease_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.composer = composer
        self.sender = sender
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.chunk = chunk
        self.lease_s = settings.digest_lease_s if lease_s is None else lease_s

    # ------------------------------------------------------------------ rendering
    def render(self, enterprise: Enterprise, digest: Digest) -> tuple[RenderedDigest, str]:
        token = make_unsubscribe_token(enterprise.id, self.settings.resolved_secret())
        url = unsubscribe_page_url(self.settings, token)
        for item in digest.items:  # opened without a key: the enterprise's signed page of the resource
            item.url = resource_page_url(self.settings, enterprise.id, item.resource_id)
        return render_digest(digest, enterprise_name=enterprise.name, unsubscribe_url=url), token

    def preview(
        self, session: Session, enterprise: Enterprise, period: str | None = None
    ) -> tuple[Digest, RenderedDigest]:
        digest = self.composer.compose(session, enterprise, period or period_of(datetime.now(UTC).date()))
        rendered, _ = self.render(enterprise, digest)
        return digest, rendered

    # ------------------------------------------------------------------ the run
    def run(
        self,
        period: str | None = None,
        *,
        dry_run: bool = False,
        tenant: str | None = None,
        enterprise_ids: Sequence[int] | None = None,
        now: datetime | None = None,
    ) -> RunReport:
        now = now or datetime.now(UTC)
        period = period or period_of(now.date())
        report = RunReport(period=period, dry_run=dry_run)
        with Session(self.db, expire_on_commit=False) as session:
            stmt = select(Enterprise).order_by(Enterprise.id)
            if tenant is not None:
                stmt = stmt.where(Enterprise.tenant_id == tenant)
            if enterprise_ids is not None:
                stmt = stmt.where(col(Enterprise.id).in_(list(enterprise_ids)))
            enterprises = list(session.exec(stmt))
            logged = {
                log.enterprise_id: log
                for log in session.exec(select(DigestLog).where(DigestLog.period == period))
            }
            todo: list[Enterprise] = []
            for e in enterprises:
                log = logged.get(e.id)
                if log is not None:
                    if log.status in ("sent", "skipped", "failed", "unconfirmed"):
                        report.already_done += 1
                    continue  # pending / sending rows are resumed below
                reason = ineligible_reason(e, period)
                if reason is None:
                    todo.append(e)
                    continue
                report.skipped += 1
                if reason.startswith(EMAIL_PROBLEMS) and not dry_run:
                    self._insert(
                        session, DigestLog(enterprise_id=e.id, period=period, status="skipped", error=reason)
                    )
            for start in range(0, len(todo), self.chunk):
                part = todo[start : start + self.chunk]
                errors: dict[int, str] = {}
                digests = self.composer.compose_many(session, part, period, now=now, errors=errors)
                for e in part:
                    if e.id in errors:
                        report.errors.append({"enterprise_id": e.id, "error": errors[e.id]})
                        continue
                    self._plan(session, e, digests[e.id], report, dry_run=dry_run)
        if not dry_run:
            self._send_due(report, now=now, tenant=tenant, enterprise_ids=enterprise_ids)
        return report

    def _insert(self, session: Session, log: DigestLog) -> bool:
        session.add(log)
        try:
            session.commit()
            return True
        except IntegrityError:  # a concurrent run planned this enterprise and period first
            session.rollback()
            return False

    def _plan(
        self, session: Session, e: Enterprise, digest: Digest, report: RunReport, *, dry_run: bool
    ) -> None:
        if not digest.items:
            report.empty += 1
            if not dry_run:
                self._insert(
                    session,
                    DigestLog(
                        enterprise_id=e.id,
                        period=digest.period,
                        status="skipped",
                        error="nothing new to recommend",
                    ),
                )
            return
        if dry_run:
            try:
                rendered, _ = self.render(e, digest)
                report.previews.append(
                    {
                        "enterprise_id": e.id,
                        "to": e.email,
                        "subject": rendered.subject,
                        "items": len(digest.items),
                    }
                )
            except TemplateError as exc:
                report.errors.append({"enterprise_id": e.id, "error": f"template error: {exc}"})
            return
        self._insert(
            session,
            DigestLog(
                enterprise_id=e.id,
                period=digest.period,
                status="pending",
                items=[i.to_dict() for i in digest.items],
            ),
        )

    def _send_due(
        self, report: RunReport, *, now: datetime, tenant: str | None, enterprise_ids: Sequence[int] | None
    ) -> None:
        with Session(self.db, expire_on_commit=False) as session:
            stmt = (
                select(DigestLog, Enterprise)
                .join(Enterprise, Enterprise.id == DigestLog.enterprise_id)
                .where(col(DigestLog.status).in_(["pending", "sending"]))
                .where(DigestLog.created_at >= now - RESUME_WINDOW)
                .order_by(DigestLog.id)
            )
            if tenant is not None:
                stmt = stmt.where(Enterprise.tenant_id == tenant)
            if enterprise_ids is not None:
                stmt = stmt.where(col(DigestLog.enterprise_id).in_(list(enterprise_ids)))
            for log, enterprise in list(session.exec(stmt)):
                if log.status == "sending" and not self._claimed_elsewhere(session, log, report):
                    continue
                due = as_utc(log.next_attempt_at)
                if due is not None and due > now:
                    report.retry_later += 1
                    continue
                enterprise_id = enterprise.id
                try:
                    self._deliver(session, log, enterprise, report, now=now)
                except Exception as exc:  # noqa: BLE001 - one enterprise's failure never stops the run
                    session.rollback()
                    self._unexpected(session, log, enterprise_id, exc, report, now=now)

    def _deliver(
        self, session: Session, log: DigestLog, e: Enterprise, report: RunReport, *, now: datetime
    ) -> None:
        reason = ineligible_reason(e, log.period)
        if reason is not None and not reason.startswith("biweekly"):
            log.status, log.error = "skipped", reason
            session.add(log)
            session.commit()
            report.skipped += 1
            return
        digest = Digest(
            enterprise_id=e.id,
            period=log.period,
            language=language_of(e),
            items=[DigestItem.from_dict(i) for i in log.items or []],
        )
        try:
            rendered, token = self.render(e, digest)
        except Exception as exc:  # noqa: BLE001 - a broken template or context fails this digest only
            self._failed_attempt(
                session, log, f"template error: {type(exc).__name__}: {exc}", report, now=now
            )
            return
        log.message_id = log.message_id or new_message_id(self.settings.mail_from)
        try:
            message = build_message(
                rendered,
                to=e.email.strip(),
                mail_from=self.settings.mail_from,
                message_id=log.message_id,
                unsubscribe_url=unsubscribe_url(self.settings, token),
                unsubscribe_mailto=unsubscribe_mailto(self.settings.mail_from, token),
            )
        except Exception as exc:  # noqa: BLE001 - whatever the stored rows hold, this digest alone fails
            self._unbuildable(session, log, exc, report)
            return
        if not self._claim(session, log):
            report.in_flight += 1  # another run claimed it between our read and now
            return
        mark = self._marker(log)
        try:
            if _takes_mark(self.sender):
                self.sender.send(message, mark=mark)  # type: ignore[call-arg]
            else:
                mark()  # a sender that cannot say when the message left: its outcome is unknown from the start
                self.sender.send(message)
        except OutcomeUnknown as exc:
            self._unconfirmed(session, log, str(exc), report)
            return
        except SendError as exc:
            self._failed_attempt(session, log, str(exc), report, now=now, counted=True)
            return
        log.status, log.error, log.next_attempt_at = "sent", None, None
        log.sent_at = datetime.now(UTC)
        session.add(log)
        sent = {"period": log.period, "items": len(log.items or [])}
        who = audit.Actor(tenant=e.tenant_id, name="digest-runner")
        audit.record(session, who, "digest.send", record_type="enterprise", record_id=e.id, summary=sent)
        session.commit()
        report.sent += 1

    def _claim(self, session: Session, log: DigestLog) -> bool:
        """Move the row from 'pending' to 'sending' if nobody else did: one conditional UPDATE, so of two runs
        racing for it exactly one wins. The message id chosen for it is stored in the same statement."""
        claimed_at = datetime.now(UTC)
        result = session.execute(
            update(DigestLog)
            .where(col(DigestLog.id) == log.id, col(DigestLog.status) == "pending")
            .values(
                status="sending",
                attempts=DigestLog.attempts + 1,
                claimed_at=claimed_at,
                message_id=log.message_id,
            )
        )
        session.commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            session.expire(log)
            return False
        session.refresh(log)
        return True

    def _marker(self, log: DigestLog) -> Any:
        """What the sender calls just before the message's end: records `handed_at` at once (its own
        transaction), so that a run finding the row later knows whether the server may have it."""

        def mark() -> None:
            with Session(self.db) as own:
                own.execute(
                    update(DigestLog).where(col(DigestLog.id) == log.id).values(handed_at=datetime.now(UTC))
                )
                own.commit()

        return mark

    def _unconfirmed(self, session: Session, log: DigestLog, error: str, report: RunReport) -> None:
        session.rollback()
        session.execute(
            update(DigestLog)
            .where(col(DigestLog.id) == log.id)
            .values(status="unconfirmed", error=f"send outcome unknown: {error}"[:2000])
        )
        session.commit()
        report.unconfirmed += 1
        report.errors.append(
            {"enterprise_id": log.enterprise_id, "error": "send outcome unknown", "status": "unconfirmed"}
        )
        logger.warning(
            "digest for enterprise %s (Message-ID %s) marked unconfirmed: %s; not re-sent",
            log.enterprise_id,
            log.message_id,
            error,
        )

    def _claimed_elsewhere(self, session: Session, log: DigestLog, report: RunReport) -> bool:
        """A 'sending' row: in flight under a live claim (False); past the lease, its run died. If it died before
        the message's end reached the SMTP server (no `handed_at`), nothing was delivered: the row goes back to
        'pending' and this run sends it (True). Otherwise the outcome is unknown: unconfirmed (False)."""
        claimed = as_utc(log.claimed_at)
        if claimed is not None and claimed > datetime.now(UTC) - timedelta(seconds=self.lease_s):
            report.in_flight += 1
            return False
        if claimed is not None and log.handed_at is None:
            back = session.execute(
                update(DigestLog)
                .where(col(DigestLog.id) == log.id, col(DigestLog.status) == "sending")
                .where(col(DigestLog.claimed_at) == log.claimed_at, col(DigestLog.handed_at).is_(None))
                .values(status="pending", claimed_at=None)
            )
            session.commit()
            if back.rowcount == 1:  # type: ignore[attr-defined]
                session.refresh(log)
                logger.info(
                    "digest for enterprise %s: its run stopped before sending; resumed", log.enterprise_id
                )
                return True
            return False
        result = session.execute(
            update(DigestLog)
            .where(col(DigestLog.id) == log.id, col(DigestLog.status) == "sending")
            .where(
                col(DigestLog.claimed_at).is_(None)
                if log.claimed_at is None
                else col(DigestLog.claimed_at) == log.claimed_at
            )
            .values(
                status="unconfirmed",
                error="the run sending this digest stopped before recording the outcome; not re-sent",
            )
        )
        session.commit()
        if result.rowcount == 1:  # type: ignore[attr-defined]
            report.unconfirmed += 1
            report.errors.append(
                {"enterprise_id": log.enterprise_id, "error": "send outcome unknown", "status": "unconfirmed"}
            )
            logger.warning(
                "digest for enterprise %s (period %s, Message-ID %s) marked unconfirmed: its sender stopped "
                "after handing it to the SMTP server; not re-sent",
                log.enterprise_id,
                log.period,
                log.message_id,
            )
        return False

    def _failed_attempt(
        self,
        session: Session,
        log: DigestLog,
        error: str,
        report: RunReport,
        *,
        now: datetime,
        counted: bool = False,
    ) -> None:
        if not counted:
            log.attempts += 1
        log.error = error[:2000]
        if log.attempts >= self.max_attempts:
            log.status, log.next_attempt_at = "failed", None
            report.failed += 1
        else:
            log.status = "pending"
            log.next_attempt_at = now + timedelta(seconds=self.backoff_s * 2 ** (log.attempts - 1))
            report.retry_later += 1
        session.add(log)
        session.commit()
        report.errors.append({"enterprise_id": log.enterprise_id, "error": log.error, "status": log.status})

    def _unbuildable(self, session: Session, log: DigestLog, exc: Exception, report: RunReport) -> None:
        """A message that cannot be built (a stored name with a line break refused as a header ...) fails at once:
        the same rows would fail the same way on every retry."""
        log.attempts += 1
        log.status, log.next_attempt_at = "failed", None
        log.error = f"cannot build the message: {type(exc).__name__}: {exc}"[:2000]
        session.add(log)
        session.commit()
        report.failed += 1
        report.errors.append({"enterprise_id": log.enterprise_id, "error": log.error, "status": log.status})
        logger.warning("digest for enterprise %s failed: %r", log.enterprise_id, log.error)

    def _unexpected(
        self,
        session: Session,
        log: DigestLog,
        enterprise_id: int | None,
        exc: Exception,
        report: RunReport,
        *,
        now: datetime,
    ) -> None:
        """An error nobody planned for counts as an attempt, so the row ends failed after max_attempts instead of
        being resumed, and logged with a traceback, on every run; the traceback is logged on the first only."""
        error = f"{type(exc).__name__}: {exc}"
        try:
            # a row the store still holds as 'sending' had this attempt counted when it was marked so
            self._failed_attempt(session, log, error, report, now=now, counted=log.status == "sending")
            first = log.attempts <= 1
        except Exception:  # noqa: BLE001 - the store failed too: nothing recorded, the next run resumes the row
            session.rollback()
            logger.exception("digest for enterprise %s failed: %r", enterprise_id, error)
            report.errors.append({"enterprise_id": enterprise_id, "error": error})
            return
        logger.error(
            "digest for enterprise %s failed (attempt %s, now %s): %r",
            enterprise_id,
            log.attempts,
            log.status,
            error,
            exc_info=exc if first else None,
        )
