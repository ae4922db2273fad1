"""Delivering email: the EmailSender protocol, SMTP (none / STARTTLS / implicit TLS, auth, timeouts, a rate
limit), a logging default and an in-memory test double, and building the MIME message with RFC 8058 headers."""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Protocol

from matcher.digests.render import RenderedDigest
from matcher.settings import Settings

logger = logging.getLogger(__name__)


class SendError(Exception):
    """A message was not accepted. `permanent` (5xx) failures are still retried a bounded number of times."""

    def __init__(self, message: str, *, code: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


class EmailSender(Protocol):
    def send(self, message: EmailMessage) -> None: ...

    def close(self) -> None: ...


def mail_domain(mail_from: str) -> str:
    addr = parseaddr(mail_from)[1]
    return addr.rsplit("@", 1)[1] if "@" in addr else "parkmatch.local"


def new_message_id(mail_from: str) -> str:
    return make_msgid(idstring="digest", domain=mail_domain(mail_from))


def build_message(
    rendered: RenderedDigest,
    *,
    to: str,
    mail_from: str,
    message_id: str,
    unsubscribe_url: str,
    unsubscribe_mailto: str | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Message-ID"] = message_id
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["From"] = mail_from
    msg["To"] = to
    msg["Subject"] = rendered.subject
    targets = [f"<{unsubscribe_url}>"] + ([f"<{unsubscribe_mailto}>"] if unsubscribe_mailto else [])
    msg["List-Unsubscribe"] = ", ".join(targets)
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return msg


def unsubscribe_mailto(mail_from: str, token: str) -> str:
    return f"mailto:unsubscribe@{mail_domain(mail_from)}?subject=unsubscribe%20{token}"


class OutcomeUnknown(SendError):
    """The connection failed after the message's end was sent: the server may have accepted it. Never retried."""


def _marking_data(
    conn: smtplib.SMTP, mark: Callable[[], None], state: dict[str, bool]
) -> Callable[[bytes], tuple]:
    """smtplib's DATA step, with `mark()` called after the message body and before its final '.': a transaction
    cut before that point is discarded by the server (nothing was delivered); after it, the outcome is unknown
    until the server's reply."""

    def data(msg: bytes | str) -> tuple:
        conn.putcmd("data")
        code, repl = conn.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        if isinstance(msg, str):
            msg = smtplib._fix_eols(msg).encode("ascii")  # type: ignore[attr-defined]
        body = smtplib._quote_periods(msg)  # type: ignore[attr-defined]
        if body[-2:] != smtplib.bCRLF:
            body += smtplib.bCRLF
        conn.send(body)
        mark()
        state["handed"] = True
        conn.send(b"." + smtplib.bCRLF)
        return conn.getreply()

    return data


class LoggingSender:
    """The default when no SMTP server is configured for a dry environment: logs instead of sending."""

    def send(self, message: EmailMessage) -> None:
        logger.info("email to %s: %s (%s)", message["To"], message["Subject"], message["Message-ID"])

    def close(self) -> None:
        pass


class SmtpSender:
    """One connection reused across a run, reopened when the server drops it; at most `rate` messages a second."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = "none",
        user: str | None = None,
        password: str | None = None,
        timeout: float = 20.0,
        rate_per_second: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "tls"):
            raise ValueError(f"smtp tls mode {tls!r}: expected none, starttls or tls")
        self.host, self.port, self.tls = host, port, tls
        self.user, self.password = user, password
        self.timeout = timeout
        self.min_interval = 1.0 / rate_per_second if rate_per_second > 0 else 0.0
        self.ssl_context = ssl_context
        self._conn: smtplib.SMTP | None = None
        self._last = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpSender:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            tls=settings.smtp_tls,
            user=settings.smtp_user,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout,
            rate_per_second=settings.mail_rate_per_second,
        )

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        if self.tls == "tls":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        conn.ehlo()
        if self.tls == "starttls":
            conn.starttls(context=context)
            conn.ehlo()
        if self.user:
            conn.login(self.user, self.password or "")
        return conn

    def _throttle(self) -> None:
        wait = self._last + self.min_interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self._last = time.monotonic()

    def send(self, message: EmailMessage, mark: Callable[[], None] | None = None) -> None:
        """Send one message. `mark` is called once the message's body is with the server and just before its end:
        a failure after it raises OutcomeUnknown (the server may have accepted it) and is not retried."""
        with self._lock:
            self._throttle()
            state = {"handed": False}
            for attempt in (1, 2):
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    if mark is not None:
                        self._conn.data = _marking_data(self._conn, mark, state)  # type: ignore[method-assign]
                    try:
                        refused = self._conn.send_message(message)
                    finally:
                        if mark is not None and self._conn is not None:
                            self._conn.__dict__.pop("data", None)
                    if refused:
                        code, text = next(iter(refused.values()))
                        raise SendError(
                            f"recipient refused: {code} {text!r}", code=code, permanent=code >= 500
                        )
                    return
                except smtplib.SMTPServerDisconnected as exc:
                    self._conn = None
                    if state["handed"]:
                        raise OutcomeUnknown(f"SMTP server disconnected after the message: {exc}") from exc
                    if attempt == 2:
                        raise SendError(f"SMTP server disconnected: {exc}") from exc
                except smtplib.SMTPRecipientsRefused as exc:
                    code, text = next(iter(exc.recipients.values()))
                    raise SendError(
                        f"recipient refused: {code} {_text(text)}", code=code, permanent=code >= 500
                    ) from exc
                except smtplib.SMTPResponseException as exc:
                    self._reset()
                    raise SendError(
                        f"SMTP {exc.smtp_code} {_text(exc.smtp_error)}",
                        code=exc.smtp_code,
                        permanent=exc.smtp_code >= 500,
                    ) from exc
                except (OSError, smtplib.SMTPException) as exc:
                    self._drop()
                    if state["handed"]:
                        raise OutcomeUnknown(
                            f"SMTP failure after the message: {type(exc).__name__}: {exc}"
                        ) from exc
                    raise SendError(f"SMTP failure: {type(exc).__name__}: {exc}") from exc

    def _reset(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rset()
            except (OSError, smtplib.SMTPException):
                self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.quit()
                except (OSError, smtplib.SMTPException):
                    pass
            self._drop()


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


SENDERS = {"smtp": SmtpSender.from_settings, "log": lambda _settings: LoggingSender()}


def make_sender(settings: Settings, kind: str = "smtp") -> EmailSender:
    try:
        factory = SENDERS[kind]
    except KeyError:
        raise ValueError(f"unknown email sender {kind!r}; expected one of {', '.join(SENDERS)}") from None
    return factory(settings)
