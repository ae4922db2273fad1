"""Every route, with every role of tenant A, aimed at tenant B's records: 0 reads of B's private data, 0 writes.
The workbench's routes (/ui) are walked by A's people signed in with that role (session cookie and CSRF token),
the API's by A's keys.

Tenant B is seeded once per module with public and private records of every type; each case walks one route
(every method of `app.routes`) as one of A's roles, with B's ids in the path and the body, then checks that no
response carries a B-private string and that B's rows (and the models serving B) are unchanged. A route that is
neither walked nor listed as tenant-free fails `test_every_route_is_walked`, so a new route is not forgotten."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel

from api.app import create_app
from matcher.accounts.users import create_user
from matcher.domain.permissions import PERSON_ROLES
from matcher.domain.tables import Enterprise
from matcher.jobs import store as jobs
from matcher.models.follower import serve_scope
from matcher.models.registry import ModelRegistry
from matcher.notify.tables import StandingMatch, WebhookDelivery
from matcher.settings import Settings
from matcher.store.db import import_table_modules, init_db, make_engine, session_scope
from matcher.store.keys import create_key
from tests.api.ui.conftest import sign_in
from tests.conftest import OTHER_TENANT, TENANT, _enterprise, _need, _resource, bearer

ROLES = ("admin", "officer", "platform")
KINDS = ("result", "scenario", "fund", "incubator")
# routes that carry no tenant's data: probes, the taxonomy, the API's own description
TENANT_FREE = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/taxonomy"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/static/docs"),
    # the workbench's entry, sign-in and language, its files, and a person's own sign-out
    ("GET", "/"),
    ("GET", "/ui"),
    ("GET", "/ui/static"),
    ("GET", "/ui/login"),
    ("POST", "/ui/login"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/lang"),
    # an enterprise's pages: the signed token is the credential, no tenant's caller is involved
    ("GET", "/p/r/{token}"),
    ("POST", "/p/r/{token}"),
    ("GET", "/p/unsubscribe"),
    ("POST", "/p/unsubscribe"),
}
PERSON_PASSWORD = "walk-the-routes"


# (method, path, role) -> the hole another change closes; strict: the case must fail until then
def _secret(label: str) -> str:
    return f"BSECRET-{label}"


@dataclass
class World:
    client: TestClient
    settings: Settings
    headers: dict[str, dict[str, str]]
    ids: dict[str, list[int]]  # B's ids by path parameter name, public and private
    secrets: list[str]
    b_request_id: str
    b_model: str
    b_external_id: str
    persons: dict[str, tuple[str, str]]  # A's role -> (session cookie, CSRF token) of a person with it


def _fitted_ranker() -> Any:
    """A small learned ranker (the first of each synthetic list is the relevant one)."""
    from training.rankers.estimator import LearnedRanker

    rows = [
        {"dense": 1.0 - i / 8, "lexical": (i * 7 % 8) / 8, "relevance": 1.0 - i / 8} for i in range(8)
    ] * 10
    y = [int(i % 8 == 0) for i in range(80)]
    return LearnedRanker().fit(rows, y, groups=[str(i // 8) for i in range(80)])


def _seed_b(client: TestClient, h: dict[str, str], settings: Settings) -> tuple[dict[str, Any], list[str]]:
    """Public and private records of every type for tenant B; the strings only B may read."""
    secrets: list[str] = []
    ids: dict[str, list[Any]] = {"enterprise_id": [], "need_id": [], "resource_id": []}

    def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        r = client.post(url, json=body, headers=h)
        assert r.status_code == 201, (url, r.text)
        return r.json()

    for vis in ("public", "private"):
        name, email = _secret(f"ent-{vis}"), f"bsecret-{vis}@b.example"
        secrets.append(email)  # contact stays with the tenant even on a public profile
        if vis == "private":
            secrets += [name, _secret("ent-desc")]
        ent = post(
            "/v1/enterprises",
            _enterprise(
                name=name,
                email=email,
                visibility=vis,
                description=_secret("ent-desc") if vis == "private" else "x",
            ),
        )
        ids["enterprise_id"].append(ent["id"])
        for need_vis in ("public", "private"):
            title = f"量子传感 {_secret(f'need-{vis}-{need_vis}')}"
            if need_vis == "private":
                secrets.append(title)
            need = post("/v1/needs", _need(ent["id"], title=title, kinds=[], visibility=need_vis))
            ids["need_id"].append(need["id"])
        r = client.put(
            f"/v1/enterprises/{ent['id']}/subscription",
            json={"frequency": "weekly", "kinds": ["fund"], "language": "en"},
            headers=h,
        )
        assert r.status_code == 200, r.text
    for kind in KINDS:
        for vis in ("public", "private"):
            title = f"量子传感 {_secret(f'{kind}-{vis}')}"
            if vis == "private":
                secrets.append(title)
            res = post(
                "/v1/resources",
                _resource(kind, title=title, visibility=vis, external_id=f"b-{kind}-{vis}"),
            )
            ids["resource_id"].append(res["id"])
    served = client.post("/v1/match", json={"text": "量子传感", "k": 5, "min_score": 0}, headers=h).json()
    assert served["matches"], served
    fb = {"request_id": served["request_id"], "resource_id": served["matches"][0]["resource"]["id"]}
    assert client.post("/v1/feedback", json={**fb, "action": "clicked"}, headers=h).status_code == 201
    hook = post("/v1/webhooks", {"url": "http://127.0.0.1:9/bsecret-hook", "description": _secret("hook")})
    secrets += ["bsecret-hook", _secret("hook")]
    key = post("/v1/keys", {"role": "officer", "name": _secret("key")})
    secrets.append(_secret("key"))
    from training.registry import TrainingRegistry  # the tests may train; the service may not

    reg = TrainingRegistry(ModelRegistry.for_settings(settings).root)
    model = reg.register(_fitted_ranker(), kind="ranker", scope=OTHER_TENANT, data={"note": _secret("model")})
    secrets.append(_secret("model"))
    office = _seed_b_office(post, client, h, ids, secrets)
    return {
        "ids": {**ids, **office, "webhook_id": [hook["id"]], "key_id": [key["id"]], "model_id": [model.id]},
        "request_id": served["request_id"],
        "model": model.id,
    }, secrets


def _seed_b_office(
    post: Callable[[str, dict[str, Any]], dict[str, Any]],
    client: TestClient,
    h: dict[str, str],
    ids: dict[str, list[int]],
    secrets: list[str],
) -> dict[str, list[Any]]:
    """B's docking event (planned), a private chain with an officer's decision, a shared chain, a tier policy, a
    tier move and a graduation; B's private strings among the secrets."""
    ent, res = ids["enterprise_id"][0], ids["resource_id"][0]
    slots = [{"start": "09:00", "end": "09:20"}, {"start": "09:20", "end": "09:40"}]
    event = post("/v1/events", {"title": _secret("event"), "date": "2031-05-20", "slots": slots, "tables": 2})
    parts = [
        post(f"/v1/events/{event['id']}/participants", {"enterprise_id": ent})["id"],
        post(
            f"/v1/events/{event['id']}/participants",
            {"resource_id": res, "email": "bsecret-agenda@b.example"},
        )["id"],
    ]
    plan = client.post(f"/v1/events/{event['id']}/schedule", json={}, headers=h)
    assert plan.status_code == 200 and plan.json()["meetings"], plan.text
    links = [{"key": "x", "name_zh": "量子传感", "feeds": ["y"]}, {"key": "y", "name_zh": _secret("link")}]
    chain = post("/v1/chains", {"name_zh": _secret("chain"), "links": links})
    shared = post(
        "/v1/chains", {"name_zh": "共享链", "shared": True, "links": [{"key": "x", "name_zh": "量子传感"}]}
    )
    decision = {"link_key": "x", "record_type": "enterprise", "record_id": ent, "decision": "pinned"}
    placement = post(f"/v1/chains/{chain['id']}/placements", {**decision, "reason": _secret("decision")})
    r = client.put("/v1/cultivation/policies/key_account", json={"digest_frequency": "biweekly"}, headers=h)
    assert r.status_code == 200, r.text
    r = client.post(
        f"/v1/enterprises/{ent}/tier", json={"tier": "incubating", "reason": _secret("tier")}, headers=h
    )
    assert r.status_code == 200, r.text
    post(f"/v1/enterprises/{ent}/graduation", {"note": _secret("graduation")})
    secrets += [
        _secret("event"), "bsecret-agenda@b.example", _secret("link"), _secret("chain"), _secret("decision"),
        _secret("tier"), _secret("graduation"),
    ]  # fmt: skip
    return {
        "event_id": [event["id"]],
        "participant_id": parts,
        "meeting_id": [plan.json()["meetings"][0]["id"]],
        "chain_id": [chain["id"], shared["id"]],
        "placement_id": [placement["id"]],
        "tier": ["key_account"],
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, encoder_dir) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("cross-tenant")
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'store.db'}",
        encoder=str(encoder_dir),
        smtp_port=9,
        smtp_timeout=1.0,
    )
    db = make_engine(settings)
    init_db(db)
    with session_scope(db) as s:
        keys = {role: create_key(s, tenant=TENANT, role=role, name=role)[1] for role in ROLES}
        keys["b"] = create_key(s, tenant=OTHER_TENANT, role="admin", name="b")[1]
        for role in PERSON_ROLES:
            create_user(
                s, tenant=TENANT, role=role, email=f"{role}@a.example", password=PERSON_PASSWORD, commit=False
            )
        b_user = create_user(
            s,
            tenant=OTHER_TENANT,
            role="admin",
            email="bsecret-person@b.example",
            password=PERSON_PASSWORD,
            commit=False,
        ).id
    db.dispose()
    with TestClient(create_app(settings)) as client:
        headers = {name: bearer(k) for name, k in keys.items()}
        seeded, secrets = _seed_b(client, headers["b"], settings)
        seeded["ids"]["user_id"] = [b_user]
        job = jobs.create(client.app.state.app_state.db, tenant=OTHER_TENANT, kind="import")
        jobs.update(client.app.state.app_state.db, job.id, state="failed", error=_secret("job"))
        seeded["ids"]["job_id"] = [job.id]
        secrets.append(_secret("job"))
        secrets.append("bsecret-person@b.example")
        ModelRegistry.for_settings(settings).activate(seeded["model"])
        serve_scope(client.app.state.app_state.matcher, settings, OTHER_TENANT)
        persons = {}
        for role in PERSON_ROLES:
            csrf = sign_in(client, f"{role}@a.example", PERSON_PASSWORD)
            persons[role] = (client.cookies.get("pm_session"), csrf)
            client.cookies.clear()
        yield World(
            client,
            settings,
            headers,
            seeded["ids"],
            secrets,
            seeded["request_id"],
            seeded["model"],
            "b-result-private",
            persons,
        )


# B is told, in the background, when a public resource of A's fits one of B's needs: standing matches and
# webhook deliveries are the service working for B on public data, and their delivery status moves on its own
NOTIFICATIONS = {StandingMatch.__tablename__, WebhookDelivery.__tablename__}


def _snapshot(w: World) -> dict[str, Any]:
    """Every row of tenant B (and the rows hanging from them), and which models serve B."""
    import_table_modules()
    state = w.client.app.state.app_state
    out: dict[str, Any] = {}
    with Session(state.db) as session:
        b_ents = set(
            session.exec(sa_select(Enterprise.id).where(Enterprise.tenant_id == OTHER_TENANT)).scalars()
        )
        for table in SQLModel.metadata.sorted_tables:
            stmt = sa_select(table)
            if table.name in NOTIFICATIONS:
                continue
            if "tenant_id" in table.c:
                stmt = stmt.where(table.c.tenant_id == OTHER_TENANT)
            elif "enterprise_id" in table.c:
                stmt = stmt.where(table.c.enterprise_id.in_(b_ents))
            elif table.name == "tenant":
                stmt = stmt.where(table.c.id == OTHER_TENANT)
            else:
                continue
            out[table.name] = sorted(tuple(str(v) for v in row) for row in session.execute(stmt))
    reg = ModelRegistry.for_settings(w.settings)
    out["models"] = (
        reg.active_id(scope=OTHER_TENANT),
        reg.trial(scope=OTHER_TENANT),
        state.matcher.ranker_for(OTHER_TENANT).version,
    )
    return out


Request = tuple[str, dict[str, Any]]  # (query string or "", client.request keyword arguments)


def _csv(w: World) -> dict[str, Any]:
    # an import row with B's external_id: an upsert in A's tenant, never into B's row
    data = f"kind,title,external_id,description\nresult,stolen,{w.b_external_id},x\n".encode()
    return {"content": data, "headers": {"Content-Type": "text/csv"}}


def _bodies(w: World) -> dict[tuple[str, str], Callable[[], list[Request]]]:
    """The requests of each (method, path) beyond plain path substitution: B's ids in bodies and queries."""
    ents, needs, ress = w.ids["enterprise_id"], w.ids["need_id"], w.ids["resource_id"]
    stolen_resource = _resource(title="stolen")
    return {
        ("POST", "/v1/enterprises"): lambda: [("", {"json": _enterprise(name="stolen", external_id="b-x")})],
        ("GET", "/v1/enterprises"): lambda: [
            ("?visibility=private", {}),
            ("?q=BSECRET", {}),
            ("?limit=200", {}),
        ],
        ("POST", "/v1/needs"): lambda: [("", {"json": _need(e, title="stolen")}) for e in ents],
        ("GET", "/v1/needs"): lambda: (
            [(f"?enterprise_id={e}", {}) for e in ents]
            + [("?visibility=private", {}), ("?q=BSECRET", {}), ("?limit=200", {})]
        ),
        ("POST", "/v1/resources"): lambda: [
            ("", {"json": {**stolen_resource, "external_id": w.b_external_id}})
        ],
        ("GET", "/v1/resources"): lambda: [
            ("?visibility=private", {}),
            ("?q=BSECRET", {}),
            ("?limit=200", {}),
        ],
        ("POST", "/v1/resources:import"): lambda: [("?kind=result", _csv(w))],
        ("POST", "/v1/keys"): lambda: [("", {"json": {"role": "admin", "name": "stolen"}})],
        ("POST", "/v1/feedback"): lambda: (
            [
                ("", {"json": {"request_id": w.b_request_id, "resource_id": r, "action": "clicked"}})
                for r in ress
            ]
            + [
                (
                    "",
                    {
                        "json": {
                            "request_id": w.b_request_id,
                            "resource_id": ress[0],
                            "action": "clicked",
                            "need_id": n,
                        }
                    },
                )
                for n in needs
            ]
        ),
        ("POST", "/v1/match"): lambda: (
            [("", {"json": {"need_id": n, "k": 50, "min_score": 0}}) for n in needs]
            + [("", {"json": {"enterprise_id": e, "k": 50, "min_score": 0}}) for e in ents]
            + [("", {"json": {"text": "量子传感 BSECRET", "k": 50, "min_score": 0}})]
        ),
        ("GET", "/v1/search"): lambda: [("?q=量子传感 BSECRET&k=50&min_score=0&include_inactive=true", {})],
        ("GET", "/v1/digests/preview"): lambda: [(f"?enterprise_id={e}", {}) for e in ents],
        ("POST", "/v1/digests:run"): lambda: [("", {"json": {"dry_run": True}}), ("", {})],
        ("POST", "/v1/webhooks"): lambda: [
            ("", {"json": {"url": "http://127.0.0.1:9/a-hook", "description": "stolen"}})
        ],
        ("GET", "/v1/unsubscribe"): lambda: [("?token=forged", {})],
        ("POST", "/v1/unsubscribe"): lambda: [("?token=forged", {})],
        ("GET", "/v1/stats"): lambda: [("?threshold=0", {})],
        ("PATCH", "/v1/enterprises/{enterprise_id}"): lambda: [("", {"json": {"name": "stolen"}})],
        ("PATCH", "/v1/needs/{need_id}"): lambda: [("", {"json": {"title": "stolen", "status": "closed"}})],
        ("PATCH", "/v1/resources/{resource_id}"): lambda: [("", {"json": {"title": "stolen"}})],
        ("PUT", "/v1/enterprises/{enterprise_id}/subscription"): lambda: [
            ("", {"json": {"frequency": "off", "unsubscribed": True}})
        ],
        ("GET", "/v1/resources/{resource_id}/matches"): lambda: [("?k=50&min_score=0", {})],
        ("GET", "/v1/needs/{need_id}/matches"): lambda: [("?k=50&min_score=0", {})],
        ("GET", "/v1/enterprises/{enterprise_id}/matches"): lambda: [("?k=50&min_score=0", {})],
        **_page_bodies(w),
        **_office_bodies(w),
    }


def _page_bodies(w: World) -> dict[tuple[str, str], Callable[[], list[Request]]]:
    """The workbench's forms and links with B's ids (the walk adds the person's CSRF token to each form)."""
    ents, needs, ress = w.ids["enterprise_id"], w.ids["need_id"], w.ids["resource_id"]
    subjects = [f"E{e}" for e in ents] + [f"N{n}" for n in needs]
    return {
        ("GET", "/ui/search"): lambda: (
            [(f"?enterprise_id={e}", {}) for e in ents]
            + [(f"?need_id={n}", {}) for n in needs]
            + [("?q=量子传感 BSECRET&open_only=&submitted=1&k=50", {})]
        ),
        ("POST", "/ui/search"): lambda: (
            [("", {"data": {"submitted": "1", "subject": s, "k": "50"}}) for s in subjects]
            + [("", {"data": {"submitted": "1", "q": "量子传感 BSECRET", "k": "50"}})]
        ),
        ("POST", "/ui/export/search"): lambda: [
            ("", {"data": {"submitted": "1", "q": "量子传感 BSECRET", "k": "50", "format": "csv"}})
        ],
        ("POST", "/ui/feedback"): lambda: [
            ("", {"data": {"request_id": w.b_request_id, "resource_id": r, "action": "accepted"}})
            for r in ress
        ],
        ("POST", "/ui/curation"): lambda: [
            ("", {"data": {"enterprise_id": e, "resource_id": r, "state": "pin", "note": "stolen"}})
            for e in ents
            for r in ress[:2]
        ],
        ("GET", "/ui/enterprises"): lambda: [("?q=BSECRET", {})],
        ("GET", "/ui/resources"): lambda: [("?q=BSECRET", {}), ("?kind=scenario", {})],
        ("GET", "/ui/export/fit/{resource_id}"): lambda: [("?format=csv", {})],
        ("POST", "/ui/enterprises/{enterprise_id}/edit"): lambda: [
            (
                "",
                {
                    "data": {
                        "name": "stolen",
                        "digest_frequency": "off",
                        "language": "zh",
                        "visibility": "public",
                    }
                },
            )
        ],
        ("POST", "/ui/enterprises/{enterprise_id}/needs/new"): lambda: [
            ("", {"data": {"title": "stolen", "status": "open", "visibility": "public"}})
        ],
        ("POST", "/ui/needs/{need_id}/edit"): lambda: [
            ("", {"data": {"title": "stolen", "status": "closed", "visibility": "public"}})
        ],
        ("POST", "/ui/resources/{resource_id}/edit"): lambda: [
            ("", {"data": {"title": "stolen", "status": "closed", "visibility": "public"}})
        ],
        ("POST", "/ui/users/{user_id}"): lambda: [
            ("", {"data": {"op": "deactivate"}}),
            ("", {"data": {"op": "password", "password": "stolen-password"}}),
        ],
        ("POST", "/ui/import"): lambda: [
            ("", {"data": {"kind": "result"}, "files": {"file": ("b.csv", _csv(w)["content"], "text/csv")}})
        ],
        **_office_page_bodies(w),
    }


def _office_page_bodies(w: World) -> dict[tuple[str, str], Callable[[], list[Request]]]:
    """The park-office pages' forms and links with B's ids (chains, events, cultivation, relay)."""
    ents, ress, chains = w.ids["enterprise_id"], w.ids["resource_id"], w.ids["chain_id"]
    return {
        ("GET", "/ui/cultivation"): lambda: [(f"?chain_id={c}&tier=incubating", {}) for c in chains],
        ("POST", "/ui/chains/new"): lambda: [
            ("", {"data": {"name_zh": "a", "rows": "1", "links.0.name_zh": "a", "links.0.feeds": "x"}})
        ],
        ("POST", "/ui/chains/{chain_id}/placements"): lambda: [
            (
                "",
                {
                    "data": {
                        "link_key": "x",
                        "record_type": "enterprise",
                        "record_id": e,
                        "decision": "pinned",
                    }
                },
            )
            for e in ents
        ],
        ("POST", "/ui/events/{event_id}/participants"): lambda: (
            [("", {"data": {"record": f"E{e}"}}) for e in ents]
            + [("", {"data": {"record": f"R{r}"}}) for r in ress]
        ),
        ("POST", "/ui/events/{event_id}/meetings/{meeting_id}/outcome"): lambda: [
            ("", {"data": {"outcome": "deal", "amount": "1"}})
        ],
        # the caller's own tier policy is set (B's is untouched): the answer is the redirect, not followed
        ("POST", "/ui/cultivation/policies/{tier}"): lambda: [
            ("", {"data": {"digest_frequency": "off"}, "follow_redirects": False})
        ],
        ("POST", "/ui/cultivation/enterprises/{enterprise_id}/tier"): lambda: [
            ("", {"data": {"tier": "prospect", "reason": "stolen"}})
        ],
        ("POST", "/ui/cultivation/enterprises/{enterprise_id}/graduation"): lambda: [
            ("", {"data": {"note": "stolen"}})
        ],
    }


def _office_bodies(w: World) -> dict[tuple[str, str], Callable[[], list[Request]]]:
    """Events, chains, tiers and graduations: B's ids in bodies and queries."""
    ents, ress, chains = w.ids["enterprise_id"], w.ids["resource_id"], w.ids["chain_id"]
    slots = [{"start": "09:00", "end": "09:20"}]
    pin = {"link_key": "x", "record_type": "enterprise", "decision": "pinned"}
    csv = "企业名称,统一社会信用代码\nstolen,b-x\n".encode()
    return {
        ("POST", "/v1/events"): lambda: [
            ("", {"json": {"title": "a", "date": "2031-01-01", "slots": slots, "tables": 1}})
        ],
        ("POST", "/v1/events/{event_id}/participants"): lambda: (
            [("", {"json": {"enterprise_id": e}}) for e in ents]
            + [("", {"json": {"resource_id": r}}) for r in ress]
        ),
        ("PATCH", "/v1/events/{event_id}/participants/{participant_id}"): lambda: [
            ("", {"json": {"avoid": []}})
        ],
        ("POST", "/v1/events/{event_id}/meetings/{meeting_id}/outcome"): lambda: [
            ("", {"json": {"outcome": "deal", "amount": 1.0}})
        ],
        ("POST", "/v1/chains"): lambda: [("", {"json": {"name_zh": "a", "links": [{"name_zh": "a"}]}})],
        ("PATCH", "/v1/chains/{chain_id}"): lambda: [("", {"json": {"name_zh": "stolen", "shared": False}})],
        ("POST", "/v1/chains/{chain_id}/placements"): lambda: [
            ("", {"json": {**pin, "record_id": e}}) for e in ents
        ],
        ("GET", "/v1/chains/{chain_id}/placements"): lambda: [
            (f"?record_type=enterprise&record_id={e}", {}) for e in ents
        ],
        ("POST", "/v1/enterprises/{enterprise_id}/tier"): lambda: [("", {"json": {"tier": "prospect"}})],
        ("PUT", "/v1/cultivation/policies/{tier}"): lambda: [("", {"json": {"digest_frequency": "off"}})],
        ("GET", "/v1/cultivation/funnel"): lambda: [("", {})] + [(f"?chain_id={c}", {}) for c in chains],
        ("POST", "/v1/enterprises/{enterprise_id}/graduation"): lambda: [("", {"json": {"note": "stolen"}})],
        ("GET", "/v1/relay/graduates"): lambda: [("", {})] + [(f"?chain_id={c}", {}) for c in chains],
        ("POST", "/v1/enterprises:import"): lambda: [
            ("", {"content": csv, "headers": {"Content-Type": "text/csv"}})
        ],
    }


def _app_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of `app.routes`, included routers flattened."""
    app = create_app(Settings(), load_engine=False)
    found: list[tuple[str, set[str] | None]] = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # an included router (FastAPI >= 0.130): its routes with their prefix
            found += [(c.path, c.methods) for c in contexts()]
        else:
            found.append((route.path, getattr(route, "methods", None)))
    out = []
    for path, methods in found:
        out += [(m, path) for m in sorted((methods or {"GET"}) - {"HEAD", "OPTIONS"})]
    return out


ROUTES = _app_routes()
WALKED = [r for r in ROUTES if r not in TENANT_FREE]


def _cases() -> list[Any]:
    out = []
    for method, path in WALKED:
        for role in ROLES:
            out.append(pytest.param(method, path, role, id=f"{method} {path} {role}"))
    return out


def _urls(w: World, path: str) -> list[str]:
    urls = [path]
    for name, values in w.ids.items():
        if "{" + name + "}" in path:
            urls = [u.replace("{" + name + "}", str(v)) for u in urls for v in values]
    assert "{" not in "".join(urls), f"no B ids for a path parameter of {path}"
    return urls


def test_every_route_is_walked() -> None:
    """A new route must be walked here (its path parameters mapped to B's ids) or listed as tenant-free."""
    assert set(TENANT_FREE) <= set(ROUTES), set(TENANT_FREE) - set(ROUTES)
    for _, path in WALKED:
        params = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
        assert params <= {
            "enterprise_id", "need_id", "resource_id", "webhook_id", "key_id", "model_id", "user_id",
            "event_id", "participant_id", "meeting_id", "chain_id", "placement_id", "tier", "job_id",
        }, path  # fmt: skip


@pytest.mark.parametrize(("method", "path", "role"), _cases())
def test_tenant_a_neither_reads_nor_writes_tenant_b(world: World, method: str, path: str, role: str) -> None:
    w = world
    before = _snapshot(w)
    extra = _bodies(w).get((method, path), lambda: [("", {})])()
    leaks, statuses = [], []
    for url in _urls(w, path):
        for query, kwargs in extra:
            sent = {k: v for k, v in kwargs.items() if k != "headers"}
            auth = {**w.headers[role], **kwargs.get("headers", {})}
            if path.startswith("/ui") and role in w.persons:  # a person of A with this role, signed in
                cookie, csrf = w.persons[role]
                auth["Cookie"] = f"pm_session={cookie}"
                if method != "GET":
                    sent["data"] = {"csrf": csrf, **sent.get("data", {})}
            r = w.client.request(method, url + query, headers=auth, **sent)
            statuses.append(r.status_code)
            if "Cookie" in auth:  # the person is signed in and the form carries its token: the route answered
                assert r.url.path != "/ui/login" and "安全令牌" not in r.text, (url, r.status_code)
            leaks += [(url + query, s) for s in w.secrets if s in r.text]
    after = _snapshot(w)
    assert all(s < 500 for s in statuses), statuses
    assert leaks == [], leaks
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    assert changed == {}, changed
