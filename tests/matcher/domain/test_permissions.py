"""The permission matrix itself: what each role may do, the 403/404 split, and the README table drawn from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher.domain.permissions import MATRIX, ROLES, authorize, matrix_markdown
from matcher.errors import Forbidden, NotFound
from matcher.store.keys import Caller

ADMIN = Caller(tenant="park", role="admin", key_id=1)
OFFICER = Caller(tenant="park", role="officer", key_id=2)
PLATFORM = Caller(tenant="park", role="platform", key_id=3)
README = Path(__file__).resolve().parents[3] / "README.md"


def _may(caller: Caller, action: str, record_type: str, **owner: object) -> bool:
    owner.setdefault("owner_tenant", caller.tenant)
    try:
        authorize(caller, action, record_type, **owner)  # type: ignore[arg-type]
    except Forbidden:
        return False
    return True


def test_every_role_has_a_scope_for_every_action():
    for record_type, actions in MATRIX.items():
        for action, grant in actions.items():
            for role in ROLES:
                assert grant.scope(role) in ("none", "visible", "tenant", "own"), (record_type, action, role)


def test_an_admin_manages_everything_of_its_tenant():
    for record_type, actions in MATRIX.items():
        for action in actions:
            assert _may(ADMIN, action, record_type), (record_type, action)


def test_an_officer_writes_records_but_manages_no_keys_or_models():
    for record_type in ("enterprise", "need", "result", "scenario", "fund", "incubator"):
        for action in ("read", "create", "update", "delete"):
            assert _may(OFFICER, action, record_type)
    for action, record_type in [("create", "import"), ("run", "digest"), ("preview", "digest")]:
        assert _may(OFFICER, action, record_type)
    assert _may(OFFICER, "update", "subscription")
    assert not _may(OFFICER, "resubscribe", "subscription")
    for action in ("read", "create", "delete"):
        assert not _may(OFFICER, action, "key")
    for action in ("activate", "rollback", "trial"):
        assert not _may(OFFICER, action, "model")
    assert _may(OFFICER, "read", "model")


def test_a_platform_manages_only_the_scenarios_and_needs_its_key_created():
    for record_type in ("scenario", "need"):
        assert _may(PLATFORM, "create", record_type, created_by=PLATFORM.key_id)
        for action in ("update", "delete"):
            assert _may(PLATFORM, action, record_type, created_by=PLATFORM.key_id)
            assert not _may(PLATFORM, action, record_type, created_by=99)  # another key's
            assert not _may(PLATFORM, action, record_type, created_by=None)  # the command line's, or older
    for record_type in ("result", "fund", "incubator", "enterprise"):
        assert _may(PLATFORM, "read", record_type, owner_tenant="elsewhere")
        for action in ("create", "update", "delete"):
            assert not _may(PLATFORM, action, record_type)
            assert not _may(PLATFORM, action, record_type, owner_tenant=None)  # refused before any lookup
    for action, record_type in [
        ("create", "import"),
        ("run", "digest"),
        ("preview", "digest"),
        ("update", "subscription"),
        ("create", "webhook"),
        ("read", "stats"),
        ("create", "key"),
        ("activate", "model"),
    ]:
        assert not _may(PLATFORM, action, record_type), (action, record_type)
    assert _may(PLATFORM, "create", "feedback")


def test_another_tenants_record_is_not_found_and_a_refused_role_is_forbidden():
    with pytest.raises(NotFound, match="no resource with id 5"):
        authorize(ADMIN, "update", "fund", owner_tenant="elsewhere", record="resource with id 5")
    with pytest.raises(NotFound):
        authorize(PLATFORM, "update", "scenario", owner_tenant="elsewhere", created_by=PLATFORM.key_id)
    with pytest.raises(Forbidden) as refused:
        authorize(PLATFORM, "create", "fund", owner_tenant="park")
    assert refused.value.detail == "the platform role may not create fund records (allowed: admin, officer)"
    with pytest.raises(Forbidden, match="only the scenario records it created"):
        authorize(PLATFORM, "update", "scenario", owner_tenant="park", created_by=99)
    with pytest.raises(Forbidden):
        authorize(Caller(tenant="park", role="intruder"), "read", "fund", owner_tenant="park")


def test_the_readme_table_is_the_matrix():
    text = README.read_text(encoding="utf-8")
    begin = text.index("\n", text.index("<!-- permissions:begin")) + 1
    end = text.index("<!-- permissions:end -->")
    assert text[begin:end] == matrix_markdown()
