"""The SMTP sender over STARTTLS and implicit TLS with authentication, against a real aiosmtpd server on loopback
with a certificate made for the test: delivery, login, refusal of a wrong password and of an untrusted server."""

from __future__ import annotations

import socket
import ssl
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from matcher.digests.send import SendError, SmtpSender

USER, PASSWORD = "digest@park.example", "s3cret"


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(crt),
        ],
        check=True,
        capture_output=True,
    )
    return crt, key


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.original_content or envelope.content))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


def _client_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert[0]))


def _message() -> EmailMessage:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = (
        "parkmatch <noreply@park.example>",
        "ceo@enterprise.example",
        "本周推荐",
    )
    m.set_content("三条新的匹配")
    return m


def _serve(inbox: Inbox, cert, *, implicit: bool):
    common = dict(hostname="127.0.0.1", port=_port(), authenticator=inbox.authenticate)
    if implicit:
        # the whole connection is TLS (aiosmtpd does not see it, so it must not insist on STARTTLS before AUTH)
        controller = Controller(inbox, ssl_context=_server_context(cert), auth_require_tls=False, **common)
    else:
        controller = Controller(
            inbox, tls_context=_server_context(cert), require_starttls=True, auth_require_tls=True, **common
        )
    controller.start()
    return controller


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_sends_over_tls_with_login(cert, mode):
    inbox = Inbox()
    controller = _serve(inbox, cert, implicit=mode == "tls")
    try:
        sender = SmtpSender(
            "127.0.0.1",
            controller.port,
            tls=mode,
            user=USER,
            password=PASSWORD,
            ssl_context=_client_context(cert),
        )
        sender.send(_message())
        sender.close()
    finally:
        controller.stop()
    assert inbox.logins == [USER]
    [(mail_from, body)] = inbox.messages
    assert mail_from == "noreply@park.example" and b"Subject:" in body


def test_wrong_password_is_a_clear_permanent_failure(cert):
    inbox = Inbox()
    controller = _serve(inbox, cert, implicit=False)
    try:
        sender = SmtpSender(
            "127.0.0.1",
            controller.port,
            tls="starttls",
            user=USER,
            password="wrong",
            ssl_context=_client_context(cert),
        )
        with pytest.raises(SendError) as info:
            sender.send(_message())
    finally:
        controller.stop()
    assert info.value.code == 535 and info.value.permanent
    assert inbox.messages == [] and inbox.logins == []


def test_a_server_certificate_nobody_vouches_for_is_refused(cert):
    inbox = Inbox()
    controller = _serve(inbox, cert, implicit=True)
    try:
        # the default context trusts the system's authorities only: the test's own certificate is not among them
        sender = SmtpSender("127.0.0.1", controller.port, tls="tls", user=USER, password=PASSWORD, timeout=5)
        with pytest.raises(SendError, match="SSL|certificate"):
            sender.send(_message())
    finally:
        controller.stop()
    assert inbox.messages == []
