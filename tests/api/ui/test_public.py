"""Pages for enterprises, opened from a digest without a key: the signed resource page (public fields only),
one-click feedback, the unsubscribe page; tampered, expired and foreign links get a page that says so."""

from __future__ import annotations

import re
import time

import pytest
from sqlmodel import Session, select

from matcher.digests.runner import resource_page_url
from matcher.digests.tokens import make_unsubscribe_token, make_view_token
from matcher.domain.tables import Enterprise, Feedback


@pytest.fixture
def offer(client, headers, payloads):
    ent = client.post(
        "/v1/enterprises", json=payloads.enterprise(email="boss@zhixin.example.com"), headers=headers["admin"]
    ).json()
    body = payloads.resource("result", title="量子传感器 <b>技术</b>", external_id="SECRET-EXT-1")
    body["details"].update(price=88_000_000, holder="某研究院")
    res = client.post("/v1/resources", json=body, headers=headers["admin"]).json()
    return ent, res


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_a_digest_link_opens_a_read_only_page(client, settings, offer, engine):
    ent, res = offer
    url = resource_page_url(settings, ent["id"], res["id"]).removeprefix(settings.public_url)
    page = client.get(url)
    assert page.status_code == 200
    html = page.text
    assert "量子传感器 &lt;b&gt;技术&lt;/b&gt;" in html and "某研究院" in html
    for private in ("88000000", "88,000,000", "SECRET-EXT-1", "tenant-a", "boss@zhixin"):
        assert private not in html
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "感兴趣" in html and "不相关" in html
    done = client.post(url, data={"action": "not_relevant", "csrf": csrf_of(html)})
    assert done.status_code == 200 and "已记录" in done.text
    again = client.post(url, data={"action": "not_relevant", "csrf": csrf_of(html)})
    assert again.status_code == 200
    with Session(engine) as s:
        rows = list(s.exec(select(Feedback)))
    assert [(f.action, f.reason, f.enterprise_id, f.resource_id, f.tenant_id) for f in rows] == [
        ("rejected", "not_relevant", ent["id"], res["id"], "tenant-a")
    ]
    forged = client.post(url, data={"action": "interested"})
    assert forged.status_code == 403


def test_tampered_expired_and_gone_links(client, settings, offer, headers):
    ent, res = offer
    secret = settings.resolved_secret()
    good = make_view_token(ent["id"], res["id"], secret, ttl_s=600)
    payload, sig = good.split(".")
    other = make_view_token(ent["id"], res["id"] + 1, secret, ttl_s=600).split(".")[0]
    cases = {
        f"/p/r/{other}.{sig}": (400, "链接无效"),
        f"/p/r/{good[:-3]}abc": (400, "链接无效"),
        "/p/r/garbage": (400, "链接无效"),
        f"/p/r/{make_view_token(ent['id'], res['id'], secret, ttl_s=-5)}": (410, "链接已过期"),
        f"/p/r/{make_view_token(ent['id'], res['id'], 'another-secret', ttl_s=600)}": (400, "链接无效"),
        f"/p/r/{make_unsubscribe_token(ent['id'], secret)}": (400, "链接无效"),
    }
    for url, (status, words) in cases.items():
        r = client.get(url)
        assert (r.status_code, words in r.text) == (status, True), url
        assert "量子" not in r.text
    client.delete(f"/v1/resources/{res['id']}", headers=headers["admin"])
    gone = client.get(f"/p/r/{good}")
    assert gone.status_code == 404 and "已下架" in gone.text


def test_english_enterprises_read_english(client, settings, headers, payloads):
    ent = client.post(
        "/v1/enterprises", json=payloads.enterprise(name="Helio", language="en"), headers=headers["admin"]
    ).json()
    res = client.post(
        "/v1/resources", json=payloads.resource("fund", title="Seed fund"), headers=headers["admin"]
    ).json()
    url = resource_page_url(settings, ent["id"], res["id"]).removeprefix(settings.public_url)
    html = client.get(url).text
    assert "Interested" in html and "Not relevant" in html and 'lang="en"' in html


def test_the_unsubscribe_page(client, settings, offer, engine):
    ent, _ = offer
    token = make_unsubscribe_token(ent["id"], settings.resolved_secret())
    page = client.get("/p/unsubscribe", params={"token": token})
    assert page.status_code == 200 and "确定不再接收" in page.text
    with Session(engine) as s:
        assert not s.get(Enterprise, ent["id"]).unsubscribed  # a GET changes nothing
    done = client.post("/p/unsubscribe", data={"token": token, "csrf": csrf_of(page.text)})
    assert done.status_code == 200 and "已退订" in done.text
    with Session(engine) as s:
        assert s.get(Enterprise, ent["id"]).unsubscribed
    expired = make_unsubscribe_token(ent["id"], settings.resolved_secret(), ttl_s=-1, now=time.time())
    assert client.get("/p/unsubscribe", params={"token": expired}).status_code == 410
    assert client.get("/p/unsubscribe", params={"token": "x.y"}).status_code == 400
