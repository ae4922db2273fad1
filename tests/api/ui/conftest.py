"""Workbench fixtures: accounts per role and tenant, and clients signed in as them."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from matcher.accounts.users import create_user
from matcher.store.db import session_scope
from tests.api.test_match import CATALOG
from tests.conftest import OTHER_TENANT, TENANT

PASSWORD = "correct horse 1"
# name -> (tenant, role, email)
ACCOUNTS = {
    "admin": (TENANT, "admin", "admin@park-a.example"),
    "officer": (TENANT, "officer", "officer@park-a.example"),
    "other": (OTHER_TENANT, "officer", "officer@park-b.example"),
}


@pytest.fixture
def accounts(engine: Engine) -> dict[str, str]:
    """The accounts of ACCOUNTS (password PASSWORD), by name -> email."""
    with session_scope(engine) as s:
        for tenant, role, email in ACCOUNTS.values():
            create_user(s, tenant=tenant, role=role, email=email, password=PASSWORD, name=role, commit=False)
    return {name: spec[2] for name, spec in ACCOUNTS.items()}


def form_csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF field in the page"
    return m.group(1)


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> str:
    """Sign `client` in; returns the session's CSRF token (read from the page it lands on)."""
    page = client.get("/ui/login")
    r = client.post(
        "/ui/login",
        data={"email": email, "password": password, "csrf": form_csrf(page.text), "next": "/ui/search"},
    )
    assert r.status_code == 200 and r.url.path == "/ui/search", r.text[:500]
    return form_csrf(r.text)


@pytest.fixture
def signed(accounts) -> Callable[[TestClient, str], str]:
    """signed(client, 'officer') signs the client in as that account and returns its CSRF token."""
    return lambda client, who: sign_in(client, accounts[who])


@pytest.fixture
def park(engine_client: TestClient, headers) -> dict[str, int]:
    ids = {}
    for body in CATALOG:
        r = engine_client.post("/v1/resources", json=body, headers=headers["admin"])
        assert r.status_code == 201, r.text
        ids[body["title"]] = r.json()["id"]
    ent = engine_client.post(
        "/v1/enterprises",
        json={
            "name": "智影医疗科技",
            "description": "医学影像人工智能辅助诊断",
            "industries": ["数字医疗"],
            "stage": "startup",
        },
        headers=headers["admin"],
    ).json()
    ids["enterprise"] = ent["id"]
    need = engine_client.post(
        "/v1/needs",
        json={
            "enterprise_id": ent["id"],
            "title": "寻找医院影像场景验证",
            "description": "AI辅助诊断 CT 肺结节",
            "kinds": ["scenario"],
        },
        headers=headers["admin"],
    ).json()
    ids["need"] = need["id"]
    return ids


def search(client: TestClient, csrf: str, **fields) -> object:
    data = {"csrf": csrf, "submitted": "1", "open_only": "1", **fields}
    return client.post("/ui/search", data=data)


def titles(html: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<h3 id="title-\d+"><a [^>]*>(.*?)</a></h3>', html)
    ]
