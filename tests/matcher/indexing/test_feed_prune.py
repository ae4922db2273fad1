"""Pruning the change feed: the newest N entries and the head always stay; a replica past the pruned floor goes
on without a gap, one behind it finds the gap at once (running or at start) and rebuilds from the store; the
index digest equals the store's exactly when the replica holds the store's records."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter
from sqlmodel import Session

from matcher.domain.schemas import EnterpriseCreate, NeedCreate, ResourceCreate, ResourceUpdate
from matcher.domain.taxonomy import default_taxonomy
from matcher.indexing.digest import differences, index_digest, store_digest
from matcher.indexing.follower import FeedFollower
from matcher.indexing.indexer import Indexer
from matcher.models.encoder import load_configured_encoder
from matcher.settings import Settings
from matcher.store import feed, records

pytestmark = pytest.mark.usefixtures("store")

_resource = TypeAdapter(ResourceCreate)


@pytest.fixture
def follow_settings(engine_settings: Settings) -> Settings:
    # a hole inside the log would wait an hour: only a pruned prefix may be taken as a gap in these tests
    return engine_settings.model_copy(update={"feed_gap_grace_s": 3600.0})


def _indexer(settings: Settings, engine) -> Indexer:
    indexer = Indexer(settings, engine, default_taxonomy(), load_configured_encoder(settings))
    indexer.start(background_save_s=0)
    return indexer


def _create(engine, admin, payloads, n: int = 1) -> list:
    made = []
    for _ in range(n):
        with Session(engine, expire_on_commit=False) as s:
            made.append(
                records.create_resource(s, caller=admin, data=_resource.validate_python(payloads.resource()))
            )
    return made


def _digests(indexer: Indexer, engine) -> list[str]:
    _, supply, demand = indexer.held()
    store = {k: d.as_dict() for k, d in store_digest(engine).items()}
    return differences(store, {k: d.as_dict() for k, d in index_digest(supply, demand).items()})


def test_prune_keeps_the_newest_entries_the_head_and_the_floor(engine, callers, payloads):
    _create(engine, callers["admin"], payloads, 6)
    with pytest.raises(ValueError):
        feed.prune(engine, 0)
    done = feed.prune(engine, 4, floor=1)  # a replica at seq 1 holds the prune back
    assert (done.deleted, done.through, done.first, done.head) == (1, 1, 2, 6)
    done = feed.prune(engine, 2)
    assert (done.deleted, done.through, done.first, done.head) == (3, 4, 5, 6)
    assert feed.prune(engine, 2).deleted == 0 and feed.count(engine) == 2
    assert feed.prune(engine, 1).deleted == 1 and feed.bounds(engine).first == 6
    # the next write is numbered after the head the log kept
    _create(engine, callers["admin"], payloads)
    assert feed.head(engine) == 7


def test_a_replica_past_the_floor_sees_no_gap(engine, follow_settings, callers, payloads):
    admin = callers["admin"]
    indexer = _indexer(follow_settings, engine)
    follower = FeedFollower(indexer, follow_settings)
    _create(engine, admin, payloads, 3)
    follower.catch_up()
    feed.prune(engine, 1, floor=follower.applied)  # everything but the head: this replica applied it all
    made = _create(engine, admin, payloads, 2)
    assert follower.catch_up() == 5 and indexer.feed_gaps == 0
    assert made[-1].id in indexer.supply.stamps
    follower.close()
    indexer.close()
    again = _indexer(follow_settings, engine)  # the saved seq (5) is past the floor (4): no gap at start
    assert again.feed_gaps == 0 and again.feed_seq == 5
    again.close()


def test_a_running_replica_behind_the_floor_rebuilds_at_once(
    engine, follow_settings, callers, payloads, caplog
):
    admin = callers["admin"]
    indexer = _indexer(follow_settings, engine)
    follower = FeedFollower(indexer, follow_settings)
    kept = _create(engine, admin, payloads, 2)
    follower.catch_up()
    gone = _create(engine, admin, payloads, 3)  # seq 3..5, not applied here
    with Session(engine, expire_on_commit=False) as s:
        records.update_resource(s, caller=admin, id=kept[0].id, data=ResourceUpdate(title="钙钛矿电池"))
    with Session(engine, expire_on_commit=False) as s:
        records.delete_resource(s, caller=admin, id=kept[1].id)
    feed.prune(engine, 2)  # seq 1..5 deleted; this replica stands at 2
    with caplog.at_level("WARNING"):
        assert follower.step() == 1  # no grace: a pruned prefix cannot fill
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "change feed gap: the change feed was pruned up to seq 5; this replica had applied seq 2; "
        "rebuilding the indexes from the store"
    ]
    assert indexer.feed_gaps == 1 and follower.applied == 7
    assert set(indexer.supply.stamps) == {kept[0].id} | {r.id for r in gone}
    assert _digests(indexer, engine) == []
    follower.close()
    indexer.close()


def test_a_saved_index_behind_the_floor_rebuilds_at_start(engine, follow_settings, callers, payloads):
    admin = callers["admin"]
    indexer = _indexer(follow_settings, engine)
    follower = FeedFollower(indexer, follow_settings)
    _create(engine, admin, payloads)
    follower.catch_up()
    follower.close()
    indexer.close()  # saved at seq 1
    _create(engine, admin, payloads, 3)
    feed.prune(engine, 1)  # seq 1..3 deleted: the entries after the saved seq are gone
    restarted = _indexer(follow_settings, engine)
    assert restarted.feed_gaps == 1 and restarted.feed_seq == 4 and len(restarted.supply.stamps) == 4
    restarted.close()


def test_the_digest_says_what_differs(engine, follow_settings, callers, payloads):
    admin = callers["admin"]
    indexer = _indexer(follow_settings, engine)
    follower = FeedFollower(indexer, follow_settings)
    made = _create(engine, admin, payloads, 2)
    with Session(engine, expire_on_commit=False) as s:
        ent = records.create_enterprise(s, caller=admin, data=EnterpriseCreate(**payloads.enterprise()))
    with Session(engine, expire_on_commit=False) as s:
        records.create_need(s, caller=admin, data=NeedCreate(**payloads.need(ent.id)))
    follower.catch_up()
    assert _digests(indexer, engine) == []
    with Session(engine, expire_on_commit=False) as s:  # not applied yet: a newer version in the store
        records.update_resource(s, caller=admin, id=made[0].id, data=ResourceUpdate(title="固态电池"))
    with Session(engine, expire_on_commit=False) as s:
        records.create_need(s, caller=admin, data=NeedCreate(**payloads.need(ent.id)))
    assert _digests(indexer, engine) == [
        "resource: the same count (2) but other records or versions (checksums differ)",
        "need: 2 records in the store, 1 in the replica's index",
    ]
    follower.catch_up()
    assert _digests(indexer, engine) == []
    follower.close()
    indexer.close()
