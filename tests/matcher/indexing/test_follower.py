"""The feed follower: writes made without this process's hub (another replica, `matcher import`) reach its
indexes through the change feed; applying twice re-embeds nothing; a gap is detected, counted and answered by a
rebuild; the applied seq is saved with the indexes and a restart resumes from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import TypeAdapter
from sqlalchemy import delete
from sqlmodel import Session

from matcher.domain.schemas import EnterpriseCreate, NeedCreate, ResourceCreate, ResourceUpdate
from matcher.domain.taxonomy import default_taxonomy
from matcher.indexing.demand_keys import DEMAND_ENTERPRISE, DEMAND_NEED, demand_key
from matcher.indexing.follower import FeedFollower
from matcher.indexing.indexer import Indexer
from matcher.models.encoder import load_configured_encoder
from matcher.settings import Settings
from matcher.store import feed, records

pytestmark = pytest.mark.usefixtures("store")

_resource = TypeAdapter(ResourceCreate)


@pytest.fixture
def follow_settings(engine_settings: Settings) -> Settings:
    return engine_settings.model_copy(update={"feed_gap_grace_s": 0.0})


def _indexer(settings: Settings, engine) -> Indexer:
    indexer = Indexer(settings, engine, default_taxonomy(), load_configured_encoder(settings))
    indexer.start(background_save_s=0)
    return indexer


@pytest.fixture
def indexer(follow_settings: Settings, engine) -> Iterator[Indexer]:
    made = _indexer(follow_settings, engine)
    yield made
    made.close()


def _write(engine, fn, *args, **kwargs):
    """A write by another process: its own session, no hub."""
    with Session(engine, expire_on_commit=False) as s:
        return fn(s, *args, **kwargs)


def test_follows_creates_updates_and_deletes(indexer, follow_settings, engine, callers, payloads):
    admin = callers["admin"]
    follower = FeedFollower(indexer, follow_settings)
    row = _write(
        engine, records.create_resource, caller=admin, data=_resource.validate_python(payloads.resource())
    )
    ent = _write(
        engine, records.create_enterprise, caller=admin, data=EnterpriseCreate(**payloads.enterprise())
    )
    need = _write(engine, records.create_need, caller=admin, data=NeedCreate(**payloads.need(ent.id)))
    assert row.id not in indexer.supply.stamps
    assert follower.catch_up() == feed.head(engine) == 3
    assert row.id in indexer.supply.stamps and indexer.resources.get(row.id) is not None
    assert {demand_key(DEMAND_NEED, need.id), demand_key(DEMAND_ENTERPRISE, ent.id)} <= set(
        indexer.demand.stamps
    )
    hits = indexer.supply.lexical_search(["量子"], 5, None)
    assert [i for i, _ in hits] == [row.id]

    _write(engine, records.update_resource, caller=admin, id=row.id, data=ResourceUpdate(title="钙钛矿电池"))
    follower.catch_up()
    assert [i for i, _ in indexer.supply.lexical_search(["钙钛矿"], 5, None)] == [row.id]
    assert indexer.resources.get(row.id).title == "钙钛矿电池"

    _write(engine, records.delete_enterprise, caller=admin, id=ent.id)
    _write(engine, records.delete_resource, caller=admin, id=row.id)
    assert follower.catch_up() == feed.head(engine)
    assert row.id not in indexer.supply.stamps and indexer.resources.get(row.id) is None
    assert indexer.demand.stamps == {} and len(indexer.demand_catalog) == 0
    follower.close()


def test_applying_again_re_embeds_nothing(indexer, follow_settings, engine, callers, payloads):
    admin = callers["admin"]
    follower = FeedFollower(indexer, follow_settings)
    for _ in range(3):
        _write(
            engine, records.create_resource, caller=admin, data=_resource.validate_python(payloads.resource())
        )
    follower.catch_up()
    calls: list[int] = []
    encode = indexer.supply.encoder.encode_documents

    def counted(texts, **kw):
        calls.append(len(texts))
        return encode(texts, **kw)

    indexer.supply.encoder.encode_documents = counted  # type: ignore[method-assign]
    indexer.feed_seq = 0  # replay the whole log
    assert follower.catch_up() == 3
    assert calls == [] and len(indexer.resources) == 3
    follower.close()


def test_a_hole_that_does_not_fill_is_a_gap_and_rebuilds(indexer, follow_settings, engine, callers, payloads):
    admin = callers["admin"]
    follower = FeedFollower(indexer, follow_settings)
    made = [
        _write(
            engine, records.create_resource, caller=admin, data=_resource.validate_python(payloads.resource())
        )
        for _ in range(3)
    ]
    with Session(engine) as s:  # the log loses entries 1 and 2 before this replica read them
        s.exec(delete(feed.ChangeEntry).where(feed.ChangeEntry.seq < 3))  # type: ignore[call-overload]
        s.commit()
    follower.step()
    assert indexer.feed_gaps == 1 and follower.applied == 3
    assert set(indexer.supply.stamps) == {r.id for r in made}  # rebuilt from the store: none missed
    follower.close()


def test_a_store_older_than_the_index_is_a_gap(indexer, follow_settings, engine, callers, payloads):
    follower = FeedFollower(indexer, follow_settings)
    indexer.feed_seq = 50  # as if the store were restored from a copy older than these indexes
    _write(
        engine,
        records.create_resource,
        caller=callers["admin"],
        data=_resource.validate_python(payloads.resource()),
    )
    follower.step()
    assert indexer.feed_gaps == 1 and follower.applied == 1 and len(indexer.resources) == 1
    follower.close()


def test_the_applied_seq_is_saved_and_a_truncated_log_rebuilds_at_start(
    indexer, follow_settings, engine, callers, payloads
):
    admin = callers["admin"]
    follower = FeedFollower(indexer, follow_settings)
    _write(engine, records.create_resource, caller=admin, data=_resource.validate_python(payloads.resource()))
    follower.catch_up()
    follower.close()
    indexer.close()  # saves: the seq goes with the indexes
    again = _indexer(follow_settings, engine)
    assert again.supply.saved_feed_seq == 1 and again.feed_seq == 1 and again.feed_gaps == 0
    again.close()

    for _ in range(2):
        _write(
            engine, records.create_resource, caller=admin, data=_resource.validate_python(payloads.resource())
        )
    with Session(engine) as s:  # the log is truncated past the saved seq (entries 2 and 3 are gone)
        s.exec(delete(feed.ChangeEntry).where(feed.ChangeEntry.seq < 3))  # type: ignore[call-overload]
        s.commit()
    restarted = _indexer(follow_settings, engine)
    assert restarted.feed_gaps == 1 and restarted.feed_seq == 3 and len(restarted.supply.stamps) == 3
    restarted.close()


def test_wait_for_returns_once_applied_or_times_out(indexer, follow_settings, engine, callers, payloads):
    follower = FeedFollower(indexer, follow_settings.model_copy(update={"feed_poll_s": 0.05}))
    follower.start()
    assert not follower.wait_for(1, 0.1)  # nothing written yet
    _write(
        engine,
        records.create_resource,
        caller=callers["admin"],
        data=_resource.validate_python(payloads.resource()),
    )
    assert follower.wait_for(1, 5.0)
    status = follower.status()
    assert (status.applied, status.head, status.lag, status.gaps) == (1, 1, 0, 0)
    follower.close()
