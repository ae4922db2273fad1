"""`matcher users create|list|set`: accounts made on the command line sign in; bad input is one line and exit 2."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from matcher.accounts.tables import UserAccount
from matcher.accounts.users import authenticate
from matcher.cli.main import main
from matcher.settings import Settings
from matcher.store.db import make_engine


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MATCHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MATCHER_DATABASE_URL", raising=False)
    return tmp_path / "data"


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    return exc.value.code


def test_create_list_and_sign_in(capsys):
    args = ("users", "create", "--tenant", "demo-park", "--role", "officer", "--email", "Li.Wei@Park.test")
    assert cli(*args, "--password", "s3cret-pass") == 0
    assert "created account 1: li.wei@park.test (officer) in tenant demo-park" in capsys.readouterr().out
    assert cli("users", "list") == 0
    listed = capsys.readouterr().out
    assert "li.wei@park.test\tofficer\tactive" in listed and "argon2" not in listed
    settings = Settings()
    engine = make_engine(settings)
    with Session(engine) as s:
        assert s.exec(select(UserAccount)).one().password_hash.startswith("$argon2id$")
        assert authenticate(s, settings, email="li.wei@park.test", password="s3cret-pass").user is not None
        assert authenticate(s, settings, email="li.wei@park.test", password="wrong-pass").user is None
    engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--role", "platform", "--email", "a@b.c", "--password", "s3cret-pass"), "role: expected one of"),
        (
            ("--role", "officer", "--email", "not-an-email", "--password", "s3cret-pass"),
            "email: not an email",
        ),
        (("--role", "officer", "--email", "a@b.c", "--password", "short"), "password: at least 8"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    assert cli("users", "create", "--tenant", "demo-park", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_duplicate_email_in_a_tenant_is_refused(capsys):
    base = ("users", "create", "--tenant", "demo-park", "--role", "admin", "--email", "a@b.c")
    assert cli(*base, "--password", "s3cret-pass") == 0
    assert cli(*base, "--password", "s3cret-pass") == 2
    assert "already exists" in capsys.readouterr().err
    other = ("users", "create", "--tenant", "other-park", "--role", "admin", "--email", "a@b.c")
    assert cli(*other, "--password", "s3cret-pass") == 0  # the same person in another park


def test_set_unlocks_and_changes_the_password(capsys):
    assert (
        cli(
            "users",
            "create",
            "--tenant",
            "p",
            "--role",
            "officer",
            "--email",
            "a@b.c",
            "--password",
            "first-pass",
        )
        == 0
    )
    assert cli("users", "set", "1", "--password", "second-pass", "--unlock") == 0
    settings = Settings()
    engine = make_engine(settings)
    with Session(engine) as s:
        assert authenticate(s, settings, email="a@b.c", password="second-pass").user is not None
    engine.dispose()
    assert cli("users", "set", "99", "--unlock") == 1
