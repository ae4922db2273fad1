"""Digests end to end against a real SMTP server on loopback: composition, headers, both parts, language,
exactly-once runs, resumption after failures, bounded retries, template errors and skipped addresses."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session, select

from matcher.digests.compose import DigestComposer, DigestPolicy, is_due, period_of, period_start
from matcher.digests.runner import DigestRunner
from matcher.digests.send import SmtpSender
from matcher.digests.sources import KeywordSource
from matcher.digests.tokens import (
    InvalidToken,
    make_unsubscribe_token,
    verify_unsubscribe_token,
    verify_view_token,
)
from matcher.domain.tables import DigestLog, Enterprise, Feedback, Need, Resource, Tenant
from matcher.settings import Settings
from matcher.store.db import init_db, make_engine

PERIOD = "2026-W48"
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # Tuesday of 2026-W48


def seed(db) -> dict[str, int]:
    recent = NOW - timedelta(days=2)
    with Session(db, expire_on_commit=False) as s:
        s.add(Tenant(id="park", name="Park"))
        s.commit()
        zh = Enterprise(
            tenant_id="park",
            name="星河机器人",
            description="工业机器人 视觉检测 自动化产线",
            email="ops@xinghe.example.com",
            language="zh",
        )
        en = Enterprise(
            tenant_id="park",
            name="Helio Batteries",
            description="solid state battery cells for electric vehicles",
            email="team@helio.example.com",
            language="en",
        )
        nomail = Enterprise(tenant_id="park", name="无邮箱企业", description="工业机器人", email=None)
        bad = Enterprise(tenant_id="park", name="Bad Mail", description="battery", email="not-an-address")
        off = Enterprise(
            tenant_id="park",
            name="Off",
            description="battery",
            email="off@x.example.com",
            digest_frequency="off",
        )
        s.add_all([zh, en, nomail, bad, off])
        s.commit()
        s.add(
            Need(
                tenant_id="park",
                enterprise_id=en.id,
                title="battery thermal management",
                description="thermal runaway detection for battery packs",
                kinds=[],
            )
        )
        rows = [
            Resource(
                tenant_id="park",
                kind="result",
                title="工业机器人视觉检测算法",
                description="基于深度学习的视觉检测 自动化产线",
                provider="清华大学",
                updated_at=recent,
            ),
            Resource(
                tenant_id="park",
                kind="scenario",
                title="自动化产线改造场景",
                description="工业机器人 自动化产线 视觉检测",
                provider="某汽车厂",
                updated_at=recent,
                details={"deadline": (NOW.date() + timedelta(days=5)).isoformat()},
            ),
            Resource(
                tenant_id="park",
                kind="fund",
                title="机器人产业基金",
                description="投资工业机器人 自动化",
                provider="园区基金",
                updated_at=recent,
            ),
            Resource(
                tenant_id="park",
                kind="result",
                title="旧的机器人成果",
                description="工业机器人 视觉检测",
                provider="旧大学",
                updated_at=NOW - timedelta(days=200),
            ),
            Resource(
                tenant_id="park",
                kind="result",
                title="Solid state battery cells",
                description="solid state battery cells electric vehicles",
                provider="MIT",
                updated_at=recent,
            ),
            Resource(
                tenant_id="park",
                kind="result",
                title="Battery thermal runaway detection",
                description="thermal runaway detection for battery packs",
                provider="MIT",
                updated_at=recent,
            ),
            Resource(
                tenant_id="park",
                kind="result",
                title="Battery rejected earlier",
                description="solid state battery cells",
                provider="Other Lab",
                updated_at=recent,
            ),
            Resource(
                tenant_id="park",
                kind="result",
                title="Battery third from MIT",
                description="solid state battery electric",
                provider="MIT",
                updated_at=recent,
            ),
        ]
        s.add_all(rows)
        s.commit()
        s.add(Feedback(tenant_id="park", enterprise_id=en.id, resource_id=rows[6].id, action="rejected"))
        s.commit()
        return {
            "zh": zh.id,
            "en": en.id,
            "nomail": nomail.id,
            "bad": bad.id,
            "off": off.id,
            "old": rows[3].id,
            "rejected": rows[6].id,
            "closing": rows[1].id,
        }


@pytest.fixture()
def env(tmp_path, smtp):
    inbox, port = smtp
    settings = Settings(
        data_dir=tmp_path,
        secret_key="s3cret",
        public_url="https://park.example.com",
        smtp_host="127.0.0.1",
        smtp_port=port,
        mail_from="Park <digest@park.example.com>",
        mail_rate_per_second=0,
    )
    db = make_engine(settings)
    init_db(db)
    ids = seed(db)
    composer = DigestComposer(
        KeywordSource(db), public_url=settings.public_url, policy=DigestPolicy(threshold=0.3)
    )
    sender = SmtpSender.from_settings(settings)
    runner = DigestRunner(settings, db, composer, sender, max_attempts=3, backoff_s=60)
    yield settings, db, runner, inbox, ids
    sender.close()
    db.dispose()


def logs(db) -> dict[int, DigestLog]:
    with Session(db) as s:
        return {r.enterprise_id: r for r in s.exec(select(DigestLog).where(DigestLog.period == PERIOD))}


def parts(msg) -> tuple[str, str]:
    return msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()


def test_periods_and_biweekly():
    assert period_of(date(2026, 11, 24)) == "2026-W48"
    assert period_start("2026-W48") == date(2026, 11, 23)
    weeks = [period_of(date(2026, 1, 5) + timedelta(weeks=i)) for i in range(6)]
    assert [is_due("biweekly", w) for w in weeks].count(True) == 3
    assert all(is_due("weekly", w) for w in weeks) and not is_due("off", weeks[0])
    with pytest.raises(ValueError):
        period_start("2026-48")


def test_tokens_roundtrip_forgery_and_expiry():
    token = make_unsubscribe_token(42, "k", ttl_s=60, now=1000)
    assert verify_unsubscribe_token(token, "k", now=1030) == 42
    with pytest.raises(InvalidToken):
        verify_unsubscribe_token(token, "other-key", now=1030)
    with pytest.raises(InvalidToken):
        verify_unsubscribe_token(token, "k", now=2000)
    payload, sig = token.split(".")
    forged = make_unsubscribe_token(43, "k", now=1000).split(".")[0] + "." + sig
    with pytest.raises(InvalidToken):
        verify_unsubscribe_token(forged, "k", now=1030)
    with pytest.raises(InvalidToken):
        verify_unsubscribe_token("garbage", "k")


def test_run_sends_localized_digests_with_headers(env):
    settings, db, runner, inbox, ids = env
    report = runner.run(PERIOD, now=NOW)
    assert report.sent == 2 and report.failed == 0, report
    by_to = {str(m["To"]): m for m in inbox.messages}
    assert set(by_to) == {"ops@xinghe.example.com", "team@helio.example.com"}

    zh = by_to["ops@xinghe.example.com"]
    assert zh["Subject"].startswith("【园区匹配】") and "星河机器人" in zh["Subject"]
    assert zh["Message-ID"].endswith("@park.example.com>") and zh["Date"] and zh["From"]
    assert zh["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    lu = zh["List-Unsubscribe"]
    assert (
        lu.startswith("<https://park.example.com/v1/unsubscribe?token=")
        and "<mailto:unsubscribe@park.example.com" in lu
    )
    text, html = parts(zh)
    assert "即将截止" in text and "本期推荐" in text and "推荐理由" in text
    # each item links to the enterprise's signed page of that resource (opened without a key)
    links = re.findall(r'href="https://park\.example\.com/p/r/([^"]+)"', html)
    assert (ids["zh"], ids["closing"]) in {verify_view_token(t, "s3cret") for t in links}
    assert "https://park.example.com/p/r/" in text and "/v1/resources/" not in text
    assert "https://park.example.com/p/unsubscribe?token=" in text
    assert 'style="' in html  # CSS inlined for mail clients
    assert "旧的机器人成果" not in text  # not updated since the window

    en = by_to["team@helio.example.com"]
    assert en["Subject"].startswith("[parkmatch]")
    text, html = parts(en)
    assert "New for you" in text and "Why:" in text and "shared terms" in text
    assert "Fits your need: battery thermal management" in text
    assert "Battery rejected earlier" not in text  # rejected feedback
    assert text.count("Provider: MIT") <= 2  # at most two per provider
    assert "Helio Batteries" in html

    state = logs(db)
    assert state[ids["zh"]].status == "sent" and state[ids["zh"]].message_id == zh["Message-ID"]
    assert state[ids["nomail"]].status == "skipped" and state[ids["nomail"]].error == "no email address"
    assert state[ids["bad"]].status == "skipped" and "invalid email" in state[ids["bad"]].error
    assert ids["off"] not in state


def test_rerun_is_idempotent_and_next_period_excludes_sent(env):
    settings, db, runner, inbox, ids = env
    runner.run(PERIOD, now=NOW)
    first = len(inbox.messages)
    again = runner.run(PERIOD, now=NOW)
    assert again.sent == 0 and len(inbox.messages) == first and again.already_done >= 2
    # next week: nothing new was published, and nothing already sent may come back
    nxt = runner.run("2026-W49", now=NOW + timedelta(days=7))
    assert nxt.sent == 0 and len(inbox.messages) == first


def test_smtp_refusal_retries_with_backoff_then_fails(env):
    settings, db, runner, inbox, ids = env
    inbox.refuse.add("team@helio.example.com")
    r1 = runner.run(PERIOD, now=NOW)
    assert r1.sent == 1 and r1.retry_later == 1  # the other enterprise still got its digest
    log = logs(db)[ids["en"]]
    assert log.status == "pending" and log.attempts == 1 and "550" in log.error
    # before the backoff elapses nothing is attempted
    r2 = runner.run(PERIOD, now=NOW + timedelta(seconds=30))
    assert r2.sent == 0 and logs(db)[ids["en"]].attempts == 1
    t = NOW
    for _ in range(2):
        t += timedelta(hours=1)
        runner.run(PERIOD, now=t)
    log = logs(db)[ids["en"]]
    assert log.status == "failed" and log.attempts == 3
    runner.run(PERIOD, now=t + timedelta(days=1))
    assert logs(db)[ids["en"]].attempts == 3  # not retried forever
    # a fixed address the same week: the failed row stays failed (exactly once per period)
    inbox.refuse.clear()
    assert runner.run(PERIOD, now=t + timedelta(days=1)).sent == 0


def test_crash_mid_run_is_resumed_without_duplicates(env):
    settings, db, runner, inbox, ids = env

    class Crash(BaseException):
        pass

    real = runner.sender
    calls = {"n": 0}

    class CrashingSender:
        def send(self, message):
            calls["n"] += 1
            if calls["n"] == 2:
                raise Crash()
            real.send(message)

        def close(self):
            real.close()

    runner.sender = CrashingSender()
    with pytest.raises(Crash):
        runner.run(PERIOD, now=NOW)
    assert len(inbox.messages) == 1
    state = logs(db)
    assert sorted(r.status for r in state.values() if r.status != "skipped") == ["sending", "sent"]
    stuck = next(r for r in state.values() if r.status == "sending")
    assert stuck.claimed_at is not None
    runner.sender = real
    report = runner.run(PERIOD, now=NOW)  # within the lease: it may still be in flight, left alone
    assert report.sent == 0 and report.in_flight == 1 and len(inbox.messages) == 1
    runner.lease_s = 0.001  # past the lease: the outcome is unknown, so it is reported and never sent twice
    report = runner.run(PERIOD, now=NOW)
    assert report.sent == 0 and report.unconfirmed == 1 and len(inbox.messages) == 1
    assert logs(db)[stuck.enterprise_id].status == "unconfirmed"


def test_template_error_is_recorded_per_enterprise(env, monkeypatch):
    settings, db, runner, inbox, ids = env
    import matcher.digests.runner as runner_mod

    real = runner_mod.render_digest

    def broken(digest, **kw):
        if digest.language == "en":
            from jinja2 import Environment, StrictUndefined

            Environment(undefined=StrictUndefined).from_string("{{ missing }}").render()
        return real(digest, **kw)

    monkeypatch.setattr(runner_mod, "render_digest", broken)
    report = runner.run(PERIOD, now=NOW)
    assert report.sent == 1
    log = logs(db)[ids["en"]]
    assert log.status == "pending" and "UndefinedError" in log.error and "missing" in log.error


def test_dry_run_writes_and_sends_nothing(env):
    settings, db, runner, inbox, ids = env
    report = runner.run(PERIOD, dry_run=True, now=NOW)
    assert report.sent == 0 and len(report.previews) == 2 and not inbox.messages
    assert logs(db) == {}


def test_unsubscribed_or_off_enterprises_get_nothing(env):
    settings, db, runner, inbox, ids = env
    with Session(db) as s:
        e = s.get(Enterprise, ids["zh"])
        e.unsubscribed = True
        s.add(e)
        s.commit()
    runner.run(PERIOD, now=NOW)
    assert [str(m["To"]) for m in inbox.messages] == ["team@helio.example.com"]


def test_a_digest_that_cannot_be_built_fails_once_and_the_run_goes_on(env, caplog):
    """A name with CR/LF stored before names were validated (inserted directly here) cannot be a Subject header:
    its digest is marked failed with the reason and one log line, never left 'sending' with a traceback a run."""
    settings, db, runner, inbox, ids = env
    with Session(db, expire_on_commit=False) as s:
        evil = Enterprise(
            tenant_id="park",
            name="Evil\r\nBcc: victim@x.example.com",
            description="solid state battery cells for electric vehicles",
            email="evil@x.example.com",
            language="en",
        )
        stuck = Enterprise(
            tenant_id="park", name="Stuck\nCo", description="battery", email="stuck@x.example.com"
        )
        s.add_all([evil, stuck])
        s.commit()
        # what today's runner left behind for such a name: a row 'sending' for ever
        s.add(
            DigestLog(
                enterprise_id=stuck.id,
                period=PERIOD,
                status="sending",
                attempts=7,
                items=[],
                message_id="<digest.1@park.example.com>",
            )
        )
        s.commit()
    caplog.set_level("INFO", logger="matcher.digests")
    report = runner.run(PERIOD, now=NOW)
    # the row left 'sending' by an older runner (no claim recorded) is reported unconfirmed, not sent again
    assert report.sent == 2 and report.failed == 1 and report.unconfirmed == 1
    assert sorted(str(m["To"]) for m in inbox.messages) == [
        "ops@xinghe.example.com",
        "team@helio.example.com",
    ]
    state = logs(db)
    assert state[evil.id].status == "failed" and state[evil.id].next_attempt_at is None
    assert state[evil.id].error.startswith("cannot build the message: ValueError:")
    assert state[stuck.id].status == "unconfirmed"
    assert state[evil.id].attempts == 1
    failures = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]
    assert len(failures) == 2 and all(r.exc_info is None for r in failures)  # the failure, the unconfirmed
    assert all("\n" not in r.getMessage() for r in failures)
    caplog.clear()
    later = runner.run(PERIOD, now=NOW + timedelta(days=1))
    assert later.sent == 0 and later.failed == 0 and later.already_done >= 4
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []
    assert logs(db)[evil.id].attempts == 1 and len(inbox.messages) == 2


def test_an_unexpected_error_is_bounded_and_logs_its_traceback_once(env, caplog, monkeypatch):
    settings, db, runner, inbox, ids = env
    import matcher.digests.runner as runner_mod

    real = runner_mod.ineligible_reason
    state = {"planning": True}

    def flaky(enterprise, period):
        if not state["planning"] and enterprise.id == ids["en"]:
            raise RuntimeError("store hiccup")
        return real(enterprise, period)

    monkeypatch.setattr(runner_mod, "ineligible_reason", flaky)
    real_send_due = runner._send_due

    def send_due(*args, **kwargs):
        state["planning"] = False
        real_send_due(*args, **kwargs)

    monkeypatch.setattr(runner, "_send_due", send_due)
    caplog.set_level("INFO", logger="matcher.digests")
    t = NOW
    for _ in range(runner.max_attempts + 2):
        state["planning"] = True
        runner.run(PERIOD, now=t)
        t += timedelta(days=1)
    log = logs(db)[ids["en"]]
    assert log.status == "failed" and log.attempts == runner.max_attempts
    assert log.error == "RuntimeError: store hiccup"
    failures = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(failures) == runner.max_attempts
    assert [r.exc_info is not None for r in failures] == [True] + [False] * (runner.max_attempts - 1)
    assert [str(m["To"]) for m in inbox.messages] == ["ops@xinghe.example.com"]
