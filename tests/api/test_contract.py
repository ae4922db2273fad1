"""What the OpenAPI document promises holds: problems documented everywhere, strict ids and booleans in bodies
(a 0 is not a dry run), single-line names, PATCH nulls refused as the schema says, Bearer challenges on 401."""

from __future__ import annotations

from email.message import EmailMessage
from unittest.mock import create_autospec

from sqlmodel import Session

from api.routes.digests import get_digest_source
from matcher.digests.sources import KeywordSource
from matcher.domain.tables import Enterprise, Resource
from matcher.matching.engine import MatchEngine
from tests.conftest import TENANT


class Outbox:
    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.sent.append(message)

    def close(self) -> None:
        pass


def test_every_v1_operation_documents_its_problems(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["schemas"]["Problem"]["required"] == ["title", "status", "detail"]
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, op in operations.items():
            for status in ("401", "422") if path != "/v1/taxonomy" else ("401",):
                content = op["responses"][status]["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)


def test_patch_schemas_do_not_offer_null_where_it_is_refused(client, headers, payloads):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["EnterpriseUpdate"]["properties"]["name"]["type"] == "string"
    assert "default" not in schemas["NeedUpdate"]["properties"]["title"]
    ent = client.post("/v1/enterprises", json=payloads.enterprise(), headers=headers["admin"]).json()
    for path, field in (
        (f"/v1/enterprises/{ent['id']}", "name"),
        (f"/v1/enterprises/{ent['id']}", "visibility"),
    ):
        r = client.patch(path, json={field: None}, headers=headers["admin"])
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field
    r = client.patch(f"/v1/enterprises/{ent['id']}", json={"region": None}, headers=headers["admin"])
    assert r.status_code == 200 and r.json()["region"] is None


def test_single_line_fields_refuse_cr_and_lf(client, headers, payloads):
    bad = "Acme\r\nBcc: victim@example.com"
    cases = [
        ("/v1/enterprises", payloads.enterprise(name=bad), "name"),
        ("/v1/enterprises", payloads.enterprise(email="a@example.com\nBcc: b@example.com"), "email"),
        ("/v1/resources", payloads.resource(title="line\nbreak"), "title"),
    ]
    for path, body, field in cases:
        r = client.post(path, json=body, headers=headers["admin"])
        assert r.status_code == 422, (field, r.text)
        assert field in {e["field"] for e in r.json()["errors"]}, r.json()
    details = {**payloads.resource()["details"], "holder": "Tsinghua\rUniversity"}
    r = client.post("/v1/resources", json=payloads.resource(details=details), headers=headers["admin"])
    assert r.status_code == 422 and "holder" in r.json()["detail"]


def test_ids_and_booleans_in_bodies_are_not_coerced(client, headers):
    client.app.state.app_state.matcher = create_autospec(MatchEngine, instance=True)
    for body in (
        {"need_id": True},
        {"need_id": "1"},
        {"text": "量子", "explain": 0},
        {"text": "量子", "k": 1.0},
    ):
        r = client.post("/v1/match", json=body, headers=headers["admin"])
        assert r.status_code == 422, (body, r.text)
    client.app.state.app_state.matcher.match.assert_not_called()


def test_a_zero_dry_run_is_refused_and_sends_nothing(client, engine, headers):
    outbox = Outbox()
    client.app.state.app_state.email_sender = outbox
    client.app.dependency_overrides[get_digest_source] = lambda: KeywordSource(engine)
    with Session(engine) as s:
        s.add(
            Enterprise(
                tenant_id=TENANT, name="星河机器人", description="工业机器人 视觉检测", email="a@example.com"
            )
        )
        s.add(
            Resource(
                tenant_id=TENANT, kind="result", title="工业机器人视觉检测", description="工业机器人 视觉检测"
            )
        )
        s.commit()
    for dry_run in (0, "true", None):
        r = client.post("/v1/digests:run", json={"dry_run": dry_run}, headers=headers["officer"])
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dry_run", r.text
    assert outbox.sent == []
    r = client.post("/v1/digests:run", json={"dry_run": True}, headers=headers["officer"])
    assert r.status_code == 200 and outbox.sent == []
    # the same park, for real: the refusals above were what stood between it and the mail
    r = client.post("/v1/digests:run", json={"dry_run": False}, headers=headers["officer"])
    assert r.status_code == 200 and r.json()["sent"] == 1 and len(outbox.sent) == 1


def test_401_carries_a_bearer_challenge(client):
    r = client.get("/v1/needs")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == 'Bearer realm="parkmatch"'
    assert r.headers["content-type"] == "application/problem+json"
    r = client.get("/v1/needs", headers={"Authorization": "Bearer not-a-key"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="parkmatch", error="invalid_token"'


def test_query_strings_carry_only_what_the_operation_declares(client, headers):
    """An unknown parameter or a repeated single one is refused, naming it; a list parameter may repeat."""
    admin = headers["admin"]
    r = client.get("/v1/resources?kinnd=fund", headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kinnd"
    assert "unknown query parameter" in r.json()["detail"]
    r = client.get("/v1/resources?q=a&q=b", headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "q"
    assert client.get("/v1/resources?kind=fund&limit=5", headers=admin).status_code == 200


def test_record_bodies_say_their_text_holds_no_nul(client):
    """The store refuses NUL in any text of a record; the document says so for every string of those bodies."""
    import re

    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name, field in (("NeedCreate", "description"), ("NeedCreate", "title"), ("EnterpriseCreate", "name")):
        pattern = schemas[name]["properties"][field]["pattern"]
        assert re.fullmatch(pattern, "量子 sensor") and not re.fullmatch(pattern, "a\x00b"), (name, field)
    industry = schemas["NeedCreate"]["properties"]["industries"]["items"]["pattern"]
    assert not re.fullmatch(industry, "x\x00") and not re.fullmatch(industry, "a\nb")
