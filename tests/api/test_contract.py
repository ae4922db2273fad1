"""What the OpenAPI document promises holds: problems documented everywhere, strict ids and booleans in bodies
(a 0 is not a dry run), single-line names, PATCH nulls refused as the schema says, Bearer challenges on 401."""

from __future__ import annotations

import json
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
        {"text": "量子", "k": 1.5},
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
    industry = schemas["NeedCreate"]["properties"]["industries"]["anyOf"][0]["items"]["pattern"]
    assert not re.fullmatch(industry, "x\x00") and not re.fullmatch(industry, "a\nb")


def test_patch_details_are_typed_per_kind_and_hold_no_nul(client, headers, payloads):
    """A PATCH's details are documented as those of one kind of resource, their text without NUL; the server
    refuses what the document refuses."""
    import re

    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    refs = [s["$ref"].rsplit("/", 1)[-1] for s in schemas["ResourceUpdate"]["properties"]["details"]["anyOf"]]
    assert refs == ["ResultDetails", "ScenarioDetails", "FundDetails", "IncubatorDetails"]
    for name, field in (("FundDetails", "manager"), ("IncubatorDetails", "admission")):
        string = next(s for s in schemas[name]["properties"][field]["anyOf"] if s["type"] == "string")
        assert re.fullmatch(string["pattern"], "中关村") and not re.fullmatch(string["pattern"], "a\x00b")
    assert schemas["FundDetails"]["additionalProperties"] is False
    created = client.post("/v1/resources", json=payloads.resource("fund"), headers=headers["admin"]).json()
    r = client.patch(
        f"/v1/resources/{created['id']}", json={"details": {"manager": "a\x00b"}}, headers=headers["admin"]
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "details.manager"


def test_numbers_booleans_and_dates_in_record_bodies_are_not_coerced(client, headers, payloads):
    """The document says number, integer, boolean, date: false, "3", 1 or 0 (seconds since 1970) are refused."""
    admin = headers["admin"]
    ent = client.post("/v1/enterprises", json=payloads.enterprise(), headers=admin).json()
    for change, field in (
        ({"amount": False}, "amount"),
        ({"amount": "100"}, "amount"),
        ({"trl_min": "3"}, "trl_min"),
        ({"trl_min": True}, "trl_min"),
        ({"deadline": 0}, "deadline"),
    ):
        r = client.post("/v1/needs", json=payloads.need(ent["id"], **change), headers=admin)
        assert r.status_code == 422 and field in {e["field"] for e in r.json()["errors"]}, (change, r.text)
    for kind, details, field in (
        ("fund", {"park_affiliated": 1}, "details.park_affiliated"),
        ("fund", {"ticket_min": True}, "details.ticket_min"),
        ("result", {"trl": "5"}, "details.trl"),
        ("incubator", {"capacity": 3.5}, "details.capacity"),
        ("scenario", {"deadline": 1_700_000_000}, "details.deadline"),
    ):
        r = client.post("/v1/resources", json=payloads.resource(kind, details=details), headers=admin)
        assert r.status_code == 422 and field in {e["field"] for e in r.json()["errors"]}, (details, r.text)
    r = client.post("/v1/resources", json=payloads.resource("fund", valid_until=0), headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "valid_until"
    # JSON Schema counts 5.0 as an integer, and so does the server
    r = client.post("/v1/needs", json=payloads.need(ent["id"], trl_min=5.0), headers=admin)
    assert r.status_code == 201 and r.json()["trl_min"] == 5


def test_the_document_uses_only_json_schema_bounds(client):
    """Bounds are minimum/maximum (pydantic writes ge/le, unknown to JSON Schema, for some constrained types)."""
    found: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            found.extend(f"{path}/{key}" for key in ("ge", "le", "gt", "lt") if key in node)
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(client.get("/openapi.json").json(), "")
    assert found == []


def test_import_documents_the_file_types_it_reads(client, headers):
    """The multipart file part's types are declared; a part of another type is refused (415) as a problem."""
    op = client.get("/openapi.json").json()["paths"]["/v1/resources:import"]["post"]
    multipart = op["requestBody"]["content"]["multipart/form-data"]
    declared = [t.strip() for t in multipart["encoding"]["file"]["contentType"].split(",")]
    assert declared == [
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/jsonl",
        "application/x-ndjson",
        "application/json",
    ]
    assert list(op["responses"]["415"]["content"]) == ["application/problem+json"]
    admin = headers["admin"]
    table = "title,kind\n量子传感,result\n".encode()
    for part_type in ("text/csv", "application/json"):
        body = (
            table
            if part_type == "text/csv"
            else json.dumps([{"title": "量子传感", "kind": "result"}]).encode()
        )
        files = {"file": ("upload", body, part_type)}
        r = client.post("/v1/resources:import?dry_run=true", files=files, headers=admin)
        assert r.status_code == 200 and r.json()["rows"][0]["status"] == "created", (part_type, r.text)
    r = client.post("/v1/resources:import", files={"file": ("upload", table, "image/png")}, headers=admin)
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"
    assert "unsupported file type 'image/png'" in r.json()["detail"]


def test_import_options_are_documented_as_the_server_takes_them(client, headers):
    """`encoding` names one of the encodings listed (in any case); `mapping` is a JSON object of known targets."""
    import re

    op = client.get("/openapi.json").json()["paths"]["/v1/resources:import"]["post"]
    param = next(p for p in op["parameters"] if p["name"] == "encoding")
    pattern = next(s for s in param["schema"]["anyOf"] if s["type"] == "string")["pattern"]
    assert (
        re.fullmatch(pattern, "GBK")
        and re.fullmatch(pattern, "utf-8")
        and not re.fullmatch(pattern, "klingon")
    )
    mapping = op["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["mapping"]
    target = mapping["additionalProperties"]["anyOf"][0]["pattern"]
    for name in ("title", "details.price", "@provider", ""):
        assert re.fullmatch(target, name), name
    for name in ("details.", "colour", "details.价格"):
        assert not re.fullmatch(target, name), name
    admin = headers["admin"]
    table = {"file": ("a.csv", "标题,单位\n量子传感,北辰大学\n".encode("gbk"), "text/csv")}
    r = client.post("/v1/resources:import?kind=result&dry_run=true&encoding=GBK", files=table, headers=admin)
    assert r.status_code == 200 and r.json()["encoding"] == "GBK", r.text
    r = client.post("/v1/resources:import?kind=result&encoding=klingon", files=table, headers=admin)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "encoding"
    data = {"mapping": json.dumps({"单位": "@provider", "备注": None})}
    r = client.post(
        "/v1/resources:import?kind=result&dry_run=true&encoding=gbk", files=table, data=data, headers=admin
    )
    assert r.status_code == 200 and r.json()["rows"][0]["status"] == "created", r.text
    r = client.post(
        "/v1/resources:import?kind=result",
        files=table,
        data={"mapping": json.dumps({"单位": "colour"})},
        headers=admin,
    )
    assert r.status_code == 422 and "mapping: unknown target 'colour'" in r.json()["detail"]


def test_lists_as_one_string_and_synonyms_are_documented_as_taken(client, headers, payloads):
    """A list field also takes one string of names (or null), a stage or a transfer mode a synonym in any case:
    the document's patterns take what the server takes and refuse what it refuses."""
    import re

    schemas = client.get("/openapi.json").json()["components"]["schemas"]

    def pattern(schema: dict, field: str, branch: int) -> str:
        return schemas[schema]["properties"][field]["anyOf"][branch]["pattern"]

    names = pattern("NeedCreate", "industries", 1)
    stages = pattern("FundDetails", "stages", 1)
    kinds = pattern("NeedCreate", "kinds", 1)
    stage = pattern("EnterpriseCreate", "stage", 1)
    assert re.fullmatch(names, "AI, 芯片；摩托车维修\n生物医药") and not re.fullmatch(names, "AI,\x00")
    assert not re.fullmatch(names, "x" * 301) and not re.fullmatch(names, ",".join("a" * 51))
    assert re.fullmatch(stages, " 天使, Series A ;B轮") and not re.fullmatch(stages, "天使, 摩托")
    assert re.fullmatch(kinds, "fund, result") and not re.fullmatch(kinds, "Fund")
    assert re.fullmatch(stage, " PRE-IPO ") and not re.fullmatch(stage, "pre ipo")
    admin = headers["admin"]
    body = payloads.resource(
        "fund", industries="AI\n芯片", details={"stages": " 天使, Series A ;B轮", "sectors": None}
    )
    r = client.post("/v1/resources", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["details"]["stages"] == ["seed", "startup", "growth"] and len(r.json()["industries"]) == 2
    for bad in ({"stages": "天使, 摩托"}, {"stages": ["Series D"]}, {"sectors": "x" * 301}):
        r = client.post("/v1/resources", json=payloads.resource("fund", details=bad), headers=admin)
        assert r.status_code == 422, (bad, r.text)
    ent = client.post("/v1/enterprises", json=payloads.enterprise(stage=" PRE-IPO "), headers=admin)
    assert ent.status_code == 201 and ent.json()["stage"] == "mature"
    need = payloads.need(ent.json()["id"], kinds="fund, result")
    assert client.post("/v1/needs", json=need, headers=admin).json()["kinds"] == ["fund", "result"]
    need = payloads.need(ent.json()["id"], kinds="Fund")
    assert client.post("/v1/needs", json=need, headers=admin).status_code == 422
