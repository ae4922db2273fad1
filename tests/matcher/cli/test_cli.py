"""The `matcher import` command: exit codes, one-line errors, the summary and the JSON report."""

from __future__ import annotations

import json

import pytest

from matcher.cli.main import main

FUNDS = "编号,名称,管理人,投资阶段,最低投资额,最高投资额\nF1,天使基金,示例资本,天使轮,50万,500万\nF2,坏基金,示例资本,天使轮,900万,100万\n"


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    monkeypatch.delenv("MATCHER_MAX_IMPORT_BYTES", raising=False)
    return tmp_path / "data"


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_import_reports_rejections_and_exits_0(tmp_path, capsys):
    path = tmp_path / "funds.csv"
    path.write_text(FUNDS, encoding="gbk")
    assert cli("import", str(path), "--kind", "基金", "--tenant", "zgc-park") == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("row 3 (F2): rejected: details: Value error, ticket_min")
    assert (
        out[-1] == "imported funds.csv into zgc-park: 2 rows, 1 created, 0 updated, 0 unchanged, 1 rejected"
    )

    assert cli("import", str(path), "--kind", "fund", "--tenant", "zgc-park", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in report["rows"]] == ["unchanged", "rejected"]
    assert report["encoding"] == "gb18030"

    assert cli("import", str(path), "--kind", "fund", "--tenant", "zgc-park", "--strict") == 3
    assert "1 rows rejected (--strict)" in capsys.readouterr().err


def test_dry_run_writes_nothing(tmp_path, capsys):
    path = tmp_path / "funds.csv"
    path.write_text(FUNDS, encoding="utf-8")
    assert cli("import", str(path), "--kind", "fund", "--dry-run") == 0
    assert (
        capsys.readouterr()
        .out.strip()
        .splitlines()[-1]
        .startswith("would import funds.csv into default: 2 rows, 1 created")
    )
    assert cli("import", str(path), "--kind", "fund") == 0
    assert "1 created" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["import", "{missing}"], "error: no such file: "),
        (["import", "{csv}", "--kind", "rocket"], "error: kind: unknown kind 'rocket'"),
        (["import", "{binary}", "--kind", "result"], "error: {binary}: cannot decode the file as text"),
        (["import", "{pdf}", "--kind", "result"], "error: {pdf}: unsupported file type '.pdf'"),
        (["import", "{dir}", "--kind", "result"], "error: {dir} is a directory"),
        (["import", "{csv}", "--tenant", "Bad Tenant"], "error: tenant: 'Bad Tenant' is not a tenant id"),
        (["import", "{csv}", "--mapping", "{bad_mapping}"], "error: mapping: not valid JSON"),
    ],
)
def test_unusable_input_exits_1_with_one_line(tmp_path, capsys, args, message):
    files = {
        "missing": tmp_path / "nope.csv",
        "csv": tmp_path / "ok.csv",
        "binary": tmp_path / "blob.csv",
        "pdf": tmp_path / "doc.pdf",
        "dir": tmp_path,
        "bad_mapping": tmp_path / "map.json",
    }
    files["csv"].write_text("title\nx\n")
    files["binary"].write_bytes(b"title\n\x00\x01\x02")
    files["pdf"].write_bytes(b"%PDF-1.7")
    files["bad_mapping"].write_text("{not json")
    names = {k: str(v) for k, v in files.items()}
    assert cli(*[a.format(**names) for a in args]) == 1
    assert error_line(capsys).startswith(message.format(**names))


def test_oversize_file_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MATCHER_MAX_IMPORT_BYTES", "10")
    path = tmp_path / "big.csv"
    path.write_text("title\n" + "x" * 100)
    assert cli("import", str(path), "--kind", "result") == 1
    assert "the import limit is 10" in error_line(capsys)


def test_unreadable_file_exits_1(tmp_path, capsys, monkeypatch):
    from pathlib import Path

    path = tmp_path / "secret.csv"
    path.write_text("title\nx\n")

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert cli("import", str(path), "--kind", "result") == 1
    assert error_line(capsys) == f"error: cannot read {path}: Permission denied"
