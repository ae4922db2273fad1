"""Sign-in for people: hashed passwords, session cookies, CSRF on every form, sign-out, lockout, expiry."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from matcher.accounts.tables import UserAccount, UserSession
from matcher.domain.tables import utcnow
from tests.api.ui.conftest import PASSWORD, form_csrf, sign_in


def test_pages_need_a_session_and_send_to_sign_in(client):
    r = client.get("/ui/search?q=x", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/search"


def test_sign_in_sets_a_safe_cookie_and_signs_out(client, accounts, engine):
    page = client.get("/ui/login")
    assert page.status_code == 200 and "登录" in page.text
    assert "Content-Security-Policy" in page.headers
    r = client.post(
        "/ui/login",
        data={"email": accounts["officer"], "password": PASSWORD, "csrf": form_csrf(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "pm_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    with Session(engine) as s:
        user = s.exec(select(UserAccount).where(UserAccount.email == accounts["officer"])).one()
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash
        token = cookie.split("pm_session=", 1)[1].split(";", 1)[0]
        assert s.exec(select(UserSession)).one().token_hash != token  # only a hash is stored
    home = client.get("/ui/search")
    assert home.status_code == 200 and "退出登录" in home.text and "技术转移专员" in home.text
    csrf = form_csrf(home.text)
    out = client.post("/ui/logout", data={"csrf": csrf})
    assert out.url.path == "/ui/login" and "退出" in out.text
    assert client.get("/ui/search", follow_redirects=False).status_code == 303


def test_wrong_password_is_a_clear_message_and_locks_after_repeats(client, accounts, engine, settings):
    page = client.get("/ui/login")
    csrf = form_csrf(page.text)
    for _ in range(settings.login_max_failures - 1):
        r = client.post(
            "/ui/login", data={"email": accounts["officer"], "password": "wrong one!", "csrf": csrf}
        )
        assert r.status_code == 401 and "邮箱或密码不正确" in r.text
    unknown = client.post(
        "/ui/login", data={"email": "nobody@x.example", "password": "wrong one!", "csrf": csrf}
    )
    assert unknown.status_code == 401 and "邮箱或密码不正确" in unknown.text  # the same words: no probing
    last = client.post(
        "/ui/login", data={"email": accounts["officer"], "password": "wrong one!", "csrf": csrf}
    )
    assert last.status_code == 429 and "锁定" in last.text
    right = client.post("/ui/login", data={"email": accounts["officer"], "password": PASSWORD, "csrf": csrf})
    assert right.status_code == 429, "a locked account refuses even the right password"
    with Session(engine) as s:
        user = s.exec(select(UserAccount).where(UserAccount.email == accounts["officer"])).one()
        user.locked_until = utcnow() - timedelta(seconds=1)
        s.add(user)
        s.commit()
    sign_in(client, accounts["officer"])


def test_sign_in_without_csrf_token_is_refused(client, accounts):
    client.get("/ui/login")
    r = client.post("/ui/login", data={"email": accounts["officer"], "password": PASSWORD})
    assert r.status_code == 403 and "安全令牌" in r.text
    assert client.get("/ui/search", follow_redirects=False).status_code == 303


def test_forms_without_the_session_csrf_token_change_nothing(client, signed, engine):
    signed(client, "officer")
    r = client.post("/ui/logout", data={})
    assert r.status_code == 403 and "安全令牌" in r.text
    r = client.post("/ui/logout", data={"csrf": "forged"})
    assert r.status_code == 403
    assert client.get("/ui/search").status_code == 200  # still signed in


def test_an_expired_session_asks_to_sign_in_again(client, signed, engine, settings):
    signed(client, "officer")
    with Session(engine) as s:
        row = s.exec(select(UserSession)).one()
        row.last_seen_at = utcnow() - timedelta(minutes=settings.session_idle_minutes + 1)
        s.add(row)
        s.commit()
    r = client.get("/ui/search?q=x")
    assert r.url.path == "/ui/login" and "会话已过期" in r.text
    assert "next=/ui/search%3Fq%3Dx" in str(r.url)
    # a form posted after the session ended: not saved, said so, and the page keeps what was typed
    r = client.post("/ui/search", data={"q": "x", "csrf": "whatever"}, headers={"HX-Request": "true"})
    assert r.status_code == 401 and "会话已过期，这次提交没有保存" in r.text
    assert r.headers["HX-Retarget"] == "#flash" and "expired=1" in r.text
    plain = client.post("/ui/enterprises/new", data={"name": "x", "csrf": "whatever"})
    assert plain.status_code == 401 and "返回" in plain.text


def test_language_toggle_switches_to_english(client, signed):
    signed(client, "officer")
    r = client.get("/ui/lang?to=en&next=/ui/search")
    assert r.url.path == "/ui/search" and "Sign out" in r.text and 'lang="en"' in r.text
    assert client.get("/ui/lang?to=en&next=https://evil.example/").url.path == "/ui/search"


def test_api_docs_work_offline(client):
    for path, asset in (
        ("/docs", "/static/docs/swagger-ui-bundle.js"),
        ("/redoc", "/static/docs/redoc.standalone.js"),
    ):
        html = client.get(path).text
        assert asset in html and "cdn." not in html and "fonts.googleapis" not in html
        assert client.get(asset).status_code == 200


def test_rate_limits_charge_a_person_not_their_address_and_never_static_files(settings, engine, accounts):
    from fastapi.testclient import TestClient

    from api.app import create_app

    tight = settings.model_copy(update={"rate_anonymous_burst": 4.0, "rate_anonymous_per_s": 0.01})
    with TestClient(create_app(tight, load_engine=False)) as c:
        for _ in range(10):
            assert c.get("/ui/static/app.css").status_code == 200
        sign_in(c, accounts["officer"])  # the sign-in page and form are the address's (2 requests)
        for _ in range(10):
            assert c.get("/ui/search").status_code == 200
        c.cookies.clear()
        statuses = [c.get("/ui/login").status_code for _ in range(4)]
        assert statuses[-1] == 429
