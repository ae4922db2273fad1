"""`matcher job ID`: one background job as JSON, as GET /v1/jobs/{id} shows it; an unknown id, or a job of
another tenant than the one named, is one line on stderr and exit 1."""

from __future__ import annotations

import json

import pytest

from matcher.cli.main import main
from matcher.jobs import store as jobs


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


@pytest.mark.usefixtures("store")
def test_a_job_is_shown_and_a_missing_or_foreign_one_is_one_line(engine, settings, monkeypatch, capsys):
    monkeypatch.setenv("MATCHER_DATABASE_URL", settings.sqlalchemy_url)
    monkeypatch.setenv("MATCHER_DATA_DIR", str(settings.data_dir))
    job = jobs.create(engine, tenant="park-a", kind="import", payload=b"secret rows")
    jobs.update(engine, job.id, state="succeeded", progress=1.0, result={"created": 3})

    assert cli("job", job.id) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == job.id and shown["kind"] == "import" and shown["state"] == "succeeded"
    assert shown["result"] == {"created": 3} and shown["progress"] == 1.0
    assert "payload" not in shown
    assert cli("job", job.id, "--tenant", "park-a") == 0
    capsys.readouterr()

    for args in (("job", "0f0f0f0f-0000-4000-8000-000000000000"), ("job", job.id, "--tenant", "park-b")):
        assert cli(*args) == 1
        out = capsys.readouterr()
        assert out.out == ""
        assert len(out.err.strip().splitlines()) == 1 and out.err.startswith("error: no job")
