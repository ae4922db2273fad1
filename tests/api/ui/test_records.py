"""Records in the workbench: enterprises with needs, resources by kind, forms validated as the API validates,
imports with a report per row, scenarios closing soon; bad input, scripts in titles, another tenant's ids."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlmodel import Session, select

from matcher.domain.tables import Enterprise, Need, Resource


def test_create_and_edit_an_enterprise_and_a_need(client, signed, engine):
    csrf = signed(client, "officer")
    form = {
        "csrf": csrf,
        "name": "<script>alert(1)</script>智芯",
        "industries": "集成电路, 人工智能",
        "stage": "growth",
        "digest_frequency": "weekly",
        "language": "zh",
        "visibility": "public",
        "digest_kinds": ["fund", "result"],
    }
    r = client.post("/ui/enterprises/new", data=form)
    assert r.status_code == 200 and "已保存" in r.text
    assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;智芯" in r.text
    ent_id = int(re.search(r"/ui/enterprises/(\d+)", str(r.url)).group(1))
    with Session(engine) as s:
        ent = s.get(Enterprise, ent_id)
        assert ent.industries == ["integrated-circuits", "artificial-intelligence"]
        assert ent.digest_kinds == ["fund", "result"] and ent.created_by is None
    bad = client.post(f"/ui/enterprises/{ent_id}/edit", data={**form, "name": "", "email": "not an email"})
    assert bad.status_code == 422 and "输入有误" in bad.text
    assert 'id="f-name-err"' in bad.text and 'id="f-email-err"' in bad.text  # each field says what is wrong
    assert (
        'aria-invalid="true"' in bad.text and 'value="集成电路, 人工智能"' in bad.text
    )  # what was typed stays
    with Session(engine) as s:
        assert s.get(Enterprise, ent_id).name.endswith("智芯")  # nothing half-written
    need = client.post(
        f"/ui/enterprises/{ent_id}/needs/new",
        data={
            "csrf": csrf,
            "title": "寻找A轮融资",
            "kinds": "fund",
            "amount": "20,000,000",
            "status": "open",
            "visibility": "public",
        },
    )
    assert need.status_code == 200 and "寻找A轮融资" in need.text
    with Session(engine) as s:
        n = s.exec(select(Need)).one()
        assert (n.amount, n.kinds, n.enterprise_id) == (2e7, ["fund"], ent_id)
    wrong = client.post(
        f"/ui/needs/{n.id}/edit",
        data={"csrf": csrf, "title": "x", "trl_min": "12", "status": "open", "visibility": "public"},
    )
    assert wrong.status_code == 422 and "trl_min" in wrong.text


def test_create_a_resource_with_details_and_refusals(client, signed, engine):
    csrf = signed(client, "officer")
    ok = client.post(
        "/ui/resources/new?kind=fund",
        data={
            "csrf": csrf,
            "title": "硬科技基金",
            "status": "active",
            "visibility": "public",
            "language": "",
            "details.manager": "园区资本",
            "details.stages": ["seed", "startup"],
            "details.ticket_min": "1000000",
            "details.ticket_max": "20000000",
            "details.park_affiliated": "yes",
        },
    )
    assert ok.status_code == 200 and "硬科技基金" in ok.text and "园区资本" in ok.text
    bad = client.post(
        "/ui/resources/new?kind=fund",
        data={
            "csrf": csrf,
            "title": "坏基金",
            "status": "active",
            "visibility": "public",
            "details.ticket_min": "9000000",
            "details.ticket_max": "1000000",
        },
    )
    assert bad.status_code == 422 and "ticket_min" in bad.text and "坏基金" in bad.text
    with Session(engine) as s:
        funds = list(s.exec(select(Resource)))
    assert [f.title for f in funds] == ["硬科技基金"]
    assert funds[0].details["stages"] == ["seed", "startup"] and funds[0].details["park_affiliated"] is True
    edit = client.post(
        f"/ui/resources/{funds[0].id}/edit",
        data={
            "csrf": csrf,
            "title": "硬科技基金二期",
            "status": "active",
            "visibility": "public",
            "details.manager": "园区资本",
            "details.stages": ["seed"],
            "details.ticket_min": "",
            "details.ticket_max": "20000000",
        },
    )
    assert edit.status_code == 200 and "硬科技基金二期" in edit.text
    listed = client.get("/ui/resources?kind=fund")
    assert "硬科技基金二期" in listed.text


def test_another_tenants_record_ids_in_urls(client, signed, payloads, headers):
    mine = client.post(
        "/v1/enterprises",
        json=payloads.enterprise(name="A的私有企业", visibility="private"),
        headers=headers["admin"],
    ).json()
    public = client.post(
        "/v1/enterprises", json=payloads.enterprise(name="A的公开企业"), headers=headers["admin"]
    ).json()
    res = client.post(
        "/v1/resources",
        json=payloads.resource("fund", title="A的私有基金", visibility="private"),
        headers=headers["admin"],
    ).json()
    signed(client, "other")
    for url in (
        f"/ui/enterprises/{mine['id']}",
        f"/ui/enterprises/{public['id']}/edit",
        f"/ui/resources/{res['id']}/edit",
        f"/ui/enterprises/{mine['id']}/needs/new",
        "/ui/enterprises/99999999999999999999",
    ):
        r = client.get(url)
        assert r.status_code in (404, 422) and "A的私有" not in r.text, url
        assert "Traceback" not in r.text
    seen = client.get(f"/ui/enterprises/{public['id']}")
    assert seen.status_code == 200 and "只读" in seen.text and "contact@example.com" not in seen.text


def test_import_shows_the_report_per_row(client, signed, engine):
    csrf = signed(client, "officer")
    csv = "编号,名称,管理人,投资阶段,最低投资额,最高投资额\nF1,天使基金,示例资本,天使轮,50万,500万\nF2,坏基金,示例资本,天使轮,900万,100万\n"
    r = client.post(
        "/ui/import",
        data={"csrf": csrf, "kind": "fund"},
        files={"file": ("funds.csv", csv.encode("gbk"), "text/csv")},
    )
    assert r.status_code == 200
    assert "共 2 行：新建 1，更新 0，未变 0，拒绝 1" in r.text
    assert "<td>rejected</td>" in r.text and "ticket_min" in r.text
    empty = client.post(
        "/ui/import", data={"csrf": csrf, "kind": "fund"}, files={"file": ("e.csv", b"", "text/csv")}
    )
    assert empty.status_code == 400 and "empty" in empty.text


def test_scenarios_closing_soon(client, signed, payloads, headers):
    soon = (date.today() + timedelta(days=5)).isoformat()
    later = (date.today() + timedelta(days=60)).isoformat()
    for title, deadline in (("五天后截止的场景", soon), ("两月后截止的场景", later)):
        body = payloads.resource("scenario", title=title)
        body["details"]["deadline"] = deadline
        assert client.post("/v1/resources", json=body, headers=headers["admin"]).status_code == 201
    signed(client, "officer")
    r = client.get("/ui/closing")
    assert "五天后截止的场景" in r.text and "5 天后截止" in r.text and "两月后截止的场景" not in r.text


def test_officers_may_not_manage_accounts_admins_may(client, signed, accounts):
    signed(client, "officer")
    assert client.get("/ui/users").status_code == 403
    client.cookies.clear()
    csrf = signed(client, "admin")
    page = client.get("/ui/users")
    assert page.status_code == 200 and accounts["officer"] in page.text
    made = client.post(
        "/ui/users",
        data={"csrf": csrf, "email": "new@park-a.example", "role": "officer", "password": "long enough"},
    )
    assert made.status_code == 200 and "账户已创建" in made.text
    short = client.post(
        "/ui/users", data={"csrf": csrf, "email": "x@park-a.example", "role": "officer", "password": "short"}
    )
    assert short.status_code == 422 and "至少 8" in short.text and "x@park-a.example" in short.text
