"""The HTTP API conforms to its own OpenAPI document: schemathesis runs every operation in-process with every
check (`--checks all`), positive and negative data, authenticated as the admin of a seeded tenant."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator, MutableMapping
from email.message import EmailMessage
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.python import asgi
from sqlmodel import col, select
from starlette.types import Receive, Scope, Send

from api.app import create_app
from api.routes.imports import XLSX
from matcher.digests.tokens import make_unsubscribe_token
from matcher.domain.schemas import RESOURCE_KINDS
from matcher.domain.tables import Enterprise, Impression, Need
from matcher.settings import Settings
from matcher.store.db import session_scope
from matcher.store.keys import create_key
from matcher.store.queries import MAX_ID, encode_cursor
from tests.conftest import TENANT, _enterprise, _need, _resource, bearer

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 200
SECRET = "conformance-secret"

# the document names the opaque strings only the server issues with formats of its own; the run draws them as
# the server makes them (a cursor after any id, a signed token for any enterprise id: unknown ones answer 404)
schemathesis.openapi.format("parkmatch-cursor", st.integers(0, MAX_ID).map(encode_cursor))
schemathesis.openapi.format(
    "parkmatch-unsubscribe-token",
    st.integers(1, MAX_ID).map(lambda enterprise_id: make_unsubscribe_token(enterprise_id, SECRET)),
)


# a table either import reads: a resource's title and kind, an enterprise's name (企业名称, a column the resource
# importer ignores, as the enterprise importer ignores title and kind), and columns both map
_COLUMNS = ["title", "kind", "企业名称", "description", "region", "external_id"]


def _rows(cell: st.SearchStrategy[str]) -> st.SearchStrategy[list[dict[str, str]]]:
    """A table's records: a title and a name (blank ones are rejected row by row) and some other columns the
    importers map."""
    row = st.fixed_dictionaries(
        {"title": cell, "kind": st.sampled_from(RESOURCE_KINDS), "企业名称": cell},
        optional={"description": cell, "region": cell, "external_id": cell},
    )
    return st.lists(row, min_size=1, max_size=5)


def _csv(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _xlsx(rows: list[dict[str, str]]) -> bytes:
    book = Workbook()
    sheet = book.active
    columns = _COLUMNS
    sheet.append(columns)
    for row in rows:
        sheet.append([row.get(name) for name in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# an import's file is a table, which no schema of bytes can say: the run sends tables of the declared types, with
# cells of any text the file can hold (rows the importer rejects are reported, not refused)
_TEXT_CELL = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
_SHEET_CELL = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20)
schemathesis.openapi.media_type("text/csv", _rows(_TEXT_CELL).map(_csv))
schemathesis.openapi.media_type(
    "application/jsonl",
    _rows(_TEXT_CELL).map(
        lambda rows: "\n".join(json.dumps(row, ensure_ascii=False) for row in rows).encode()
    ),
    aliases=["application/x-ndjson"],
)
schemathesis.openapi.media_type(XLSX, _rows(_SHEET_CELL).map(_xlsx))


class OutboxSender:
    """Keeps digest mail instead of sending it: the run may ask for real (not dry-run) digests."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(self, message: EmailMessage) -> None:
        self.sent.append(message)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def park_app(tmp_path_factory: pytest.TempPathFactory, encoder_dir: Path) -> Iterator[tuple[FastAPI, str]]:
    """An app with its match engine over a seeded park; yields it and an admin key of the seeded tenant.

    schemathesis runs the app's lifespan itself (once per app, kept until shut down), so the seeding goes
    through its client: a second lifespan would build a second state."""
    root = tmp_path_factory.mktemp("conformance")
    # the run sends thousands of requests from one key and one address within seconds: buckets this deep keep
    # the limiter (and its headers) in the path without throttling it (tests/api/test_ratelimit.py covers 429s)
    unlimited = 1e9
    settings = Settings(
        data_dir=root / "data",
        database_url=f"sqlite:///{root / 'store.db'}",
        encoder=str(encoder_dir),
        rate_key_burst=unlimited,
        rate_tenant_burst=unlimited,
        rate_anonymous_burst=unlimited,
        secret_key=SECRET,
        # a drawn min_seq beyond the feed's head waits this long before its 503 (tests/api/test_feed.py times it)
        min_seq_wait_s=0.01,
    )
    app = create_app(settings)
    PARK.app = app
    try:
        with asgi.get_client(PARK) as client:
            state = app.state.app_state
            state.email_sender = OutboxSender()
            with session_scope(state.db) as session:
                admin = create_key(session, tenant=TENANT, role="admin", name="conformance")[1]
            auth = bearer(admin)
            ent = client.post("/v1/enterprises", json=_enterprise(), headers=auth)
            ent.raise_for_status()
            client.post("/v1/needs", json=_need(ent.json()["id"]), headers=auth).raise_for_status()
            for kind in ("result", "scenario", "fund", "incubator"):
                client.post("/v1/resources", json=_resource(kind), headers=auth).raise_for_status()
            # a list served to the admin, for feedback to name (see _served_match)
            served = client.post("/v1/match", json={"text": "量子传感"}, headers=auth)
            served.raise_for_status()
            assert served.json()["count"] > 0, served.text
        yield app, admin
    finally:
        asgi.shutdown_lifespans()


class SeededPark:
    """The ASGI app the schema calls: the park the fixture builds (each test module's run has its own)."""

    app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the park_app fixture builds the app"
        await self.app(scope, receive, send)


PARK = SeededPark()
# the document every app serves, read without starting one; the calls go to the seeded park
schema = schemathesis.openapi.from_dict(create_app(Settings(), load_engine=False).openapi())
schema.app = PARK
load_all_checks()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_operation_conforms(case: schemathesis.Case, park_app: tuple[FastAPI, str]) -> None:
    app, admin = park_app
    _own_enterprise(app, case)
    _served_match(app, case)
    _ordered_tickets(case)
    _applied_min_seq(case)
    _slots_in_order(case)
    _links_without_cycle(case)
    _file_in_its_encoding(case)
    _fresh_idempotency_key(case)
    case.call_and_validate(headers=_credentials(case, admin), checks=CHECKS.get_all())


def _credentials(case: schemathesis.Case, admin: str) -> dict[str, str] | None:
    """The admin key, unless the case is negative data that drops or spoils the credentials: those are sent as
    drawn, and the server must refuse them (401)."""
    if case.operation.schema.is_security_param_negated(case):
        return None
    return bearer(admin)


def _fresh_idempotency_key(case: schemathesis.Case) -> None:
    """An Idempotency-Key names one request: sent again with another body it is refused (422, as the IETF
    draft says), which no schema can express, so a schema-valid call gets a key of its own."""
    meta = case.meta
    if case.headers and "Idempotency-Key" in case.headers and meta and meta.generation.mode.is_positive:
        case.headers["Idempotency-Key"] = uuid.uuid4().hex


def _ordered_tickets(case: schemathesis.Case) -> None:
    """A fund's tickets run from ticket_min up to ticket_max, which the document says in words only (no schema
    compares two values; a reversed range is refused, 422): a schema-valid body keeps them in order."""
    meta = case.meta
    details = case.body.get("details") if isinstance(case.body, dict) else None
    if not (isinstance(details, dict) and meta and meta.generation.mode.is_positive):
        return
    low, high = details.get("ticket_min"), details.get("ticket_max")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        details["ticket_min"], details["ticket_max"] = high, low


def _applied_min_seq(case: schemathesis.Case) -> None:
    """A drawn `min_seq` beyond what the replica applied is answered 503 after the wait (documented, and timed in
    tests/api/test_feed.py), which the run's server-error check cannot tell from a failure: a valid one (in
    positive and negative cases alike, the wait runs beside the other parameters' validation) asks for a seq
    already applied; an invalid one is left to be refused."""
    for params in (case.query, case.headers):
        if not isinstance(params, MutableMapping):  # headers come as a case-insensitive mapping
            continue
        for name in list(params):
            value = params[name]
            if name.lower() not in ("min_seq", "x-matcher-min-seq") or isinstance(value, bool):
                continue
            try:
                number = int(value)  # exact for ints and digit strings
            except (TypeError, ValueError):
                try:  # the server reads "300.0" as 300 too
                    drawn = float(value)
                except (TypeError, ValueError):
                    continue
                if not drawn.is_integer():
                    continue
                number = int(drawn)
            if 0 <= number < 2**63:
                params[name] = 0 if isinstance(value, int | float) else "0"


def _positive_body(case: schemathesis.Case) -> dict | None:
    meta = case.meta
    if isinstance(case.body, dict) and meta and meta.generation.mode.is_positive:
        return case.body
    return None


def _number(value: object) -> bool:
    """A JSON number, as a schema-valid integer may be drawn (5 or 5.0)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _slots_in_order(case: schemathesis.Case) -> None:
    """An event's slots run in time order without overlaps, which the document says in words only (a slot that
    ends before it starts, or overlaps the one before, is refused, 422): schema-valid slots out of order become
    ten-minute slots a quarter of an hour apart from midnight (96 at most fit in the day)."""
    body = _positive_body(case)
    slots = body.get("slots") if body else None
    if not (
        isinstance(slots, list) and all(isinstance(s, dict) and {"start", "end"} <= s.keys() for s in slots)
    ):
        return
    times = [(_minutes(s["start"]), _minutes(s["end"])) for s in slots]
    if all(start < end for start, end in times) and all(
        times[k][0] >= times[k - 1][1] for k in range(1, len(times))
    ):
        return
    for k, slot in enumerate(slots):
        start = 15 * k
        slot["start"] = f"{start // 60:02d}:{start % 60:02d}"
        slot["end"] = f"{(start + 10) // 60:02d}:{(start + 10) % 60:02d}"


def _links_without_cycle(case: schemathesis.Case) -> None:
    """A chain's links have unique keys and feed only links of the chain, with no cycle, which the document says
    in words only (refused, 422): in a schema-valid body a repeated key is made unique, and a link keeps the
    links it feeds that come after it and those that supply it from before it (so nothing feeds back)."""
    body = _positive_body(case)
    links = body.get("links") if body else None
    if not (isinstance(links, list) and all(isinstance(link, dict) for link in links)):
        return
    keys: list[str] = []
    for k, link in enumerate(links):
        base = link.get("key") or f"l{k + 1}"
        key, n = base, 0
        while key in keys:
            n += 1
            key = f"{base[:55]}-{n}"
        if key != base:
            link["key"] = key
        keys.append(key)
    for k, link in enumerate(links):
        for name, allowed in (("feeds", keys[k + 1 :]), ("upstream", keys[:k])):
            if isinstance(link.get(name), list):
                link[name] = [ref for ref in link[name] if ref in allowed]


def _file_in_its_encoding(case: schemathesis.Case) -> None:
    """An import forced to an encoding reads its file in it, so the file must be in it, which no schema of bytes
    can say (a file that is no text in it is refused, 422): the run writes its tables in UTF-8, and a
    schema-valid call forces another encoding only on a file that reads the same in it."""
    meta = case.meta
    encoding = (case.query or {}).get("encoding")
    if not (isinstance(encoding, str) and meta and meta.generation.mode.is_positive):
        return
    data = case.body.get("file") if isinstance(case.body, dict) else case.body
    if not isinstance(data, bytes) or data.startswith(b"PK"):  # a workbook holds no text to decode
        return
    try:
        same = data.decode(encoding) == data.decode("utf-8")
    except UnicodeDecodeError:
        same = False
    if not same:
        del case.query["encoding"]


def _own_enterprise(app: FastAPI, case: schemathesis.Case) -> None:
    """A need names an enterprise of the caller's tenant, which no schema can say (a drawn id is someone else's
    or none, and a 422 names the field): a schema-valid body that names one (not null) names one that exists
    when the call is made."""
    body = _positive_body(case)
    if not (body and _number(body.get("enterprise_id"))):
        return
    with session_scope(app.state.app_state.db) as session:
        ent = session.exec(select(Enterprise).where(Enterprise.tenant_id == TENANT)).first()
        assert ent is not None, "the run keeps creating enterprises in the seeded tenant"
        case.body["enterprise_id"] = ent.id


def _served_match(app: FastAPI, case: schemathesis.Case) -> None:
    """Feedback names an item of a list served to the caller, which no schema can say (a drawn request_id was
    never served, and a 422 names it): a schema-valid body names the item last served, and its need if any."""
    body = _positive_body(case)
    if not (body and {"request_id", "resource_id", "action"} <= body.keys()):
        return
    with session_scope(app.state.app_state.db) as session:
        shown = session.exec(
            select(Impression).where(Impression.tenant_id == TENANT).order_by(col(Impression.id).desc())
        ).first()
        assert shown is not None, "the park_app fixture serves a list"
        body["request_id"], body["resource_id"] = shown.request_id, shown.resource_id
        if _number(body.get("need_id")):
            need = shown.need_id or session.exec(select(Need.id).where(Need.tenant_id == TENANT)).first()
            body["need_id"] = need
