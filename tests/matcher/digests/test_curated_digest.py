"""The park's curation in digests: a blocked resource never goes out, a pinned new one leads the email even
below the threshold; digest items link to the enterprise's signed resource page."""

from __future__ import annotations

from sqlmodel import Session, select

from matcher.domain.tables import Curation, Enterprise, Resource
from tests.matcher.digests.test_digest import NOW, PERIOD, env  # noqa: F401 - the fixture is used by name


def test_blocked_never_sent_and_pinned_first(env):  # noqa: F811
    settings, db, runner, inbox, ids = env
    with Session(db) as s:
        zh = s.get(Enterprise, ids["zh"])
        before = runner.composer.compose(s, zh, PERIOD, now=NOW)
        shown = [i.resource_id for i in before.items]
        assert len(shown) >= 2
        weak_id = s.exec(select(Resource.id).where(Resource.title == "Solid state battery cells")).one()
        assert weak_id not in shown  # an English battery result does not fit a robot maker
        s.add(Curation(tenant_id="park", enterprise_id=zh.id, resource_id=shown[0], state="block"))
        s.add(Curation(tenant_id="park", enterprise_id=zh.id, resource_id=weak_id, state="pin"))
        s.commit()
        after = runner.composer.compose(s, zh, PERIOD, now=NOW)
    ids_after = [i.resource_id for i in after.items]
    assert shown[0] not in ids_after
    new_section = [i.resource_id for i in after.items if i.section == "new"]
    assert new_section[0] == weak_id


def test_item_links_open_the_signed_resource_page(env):  # noqa: F811
    settings, db, runner, inbox, ids = env
    with Session(db) as s:
        zh = s.get(Enterprise, ids["zh"])
        digest, rendered = runner.preview(s, zh, PERIOD)
    assert digest.items
    assert f"{settings.public_url}/p/r/" in rendered.html and "/v1/resources/" not in rendered.html
    assert f"{settings.public_url}/p/unsubscribe?token=" in rendered.html
