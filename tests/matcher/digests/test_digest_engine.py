"""Digests through the production path: `EngineSource` over a real `MatchEngine` (trained static encoder,
dense and BM25 indexes, catalog filters, ranker, explanations) and the composer on top of it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from embeddings.encoders.sentence import load_encoder
from matcher.digests.compose import DemandQuery, DigestComposer, DigestPolicy
from matcher.digests.sources import EngineSource
from matcher.domain.tables import Enterprise, Feedback, Need, Resource, Tenant
from matcher.domain.taxonomy import default_taxonomy
from matcher.matching.engine import MatchEngine
from tests.conftest import OTHER_TENANT, TENANT

NOW = datetime.now(UTC)
RECENT = NOW - timedelta(days=2)
SINCE = NOW - timedelta(days=7)
CJK = re.compile(r"[\u4e00-\u9fff]")

ROBOT = "工业机器人视觉检测算法"
ROBOT_TEXT = "基于深度学习的工业机器人视觉检测，用于自动化产线的缺陷识别。"


@pytest.fixture
def world(engine_settings, engine):
    """Two tenants' records, then a started engine over them: (engine, ids by name)."""
    with Session(engine, expire_on_commit=False) as s:
        s.add_all([Tenant(id=TENANT, name="A"), Tenant(id=OTHER_TENANT, name="B")])
        s.commit()
        zh = Enterprise(
            tenant_id=TENANT,
            name="星河机器人",
            description="工业机器人 视觉检测 自动化产线",
            email="ops@xinghe.example.com",
            language="zh",
        )
        en = Enterprise(
            tenant_id=TENANT,
            name="星河机器人国际",
            description="工业机器人 视觉检测 自动化产线",
            email="intl@xinghe.example.com",
            language="en",
        )
        latin = Enterprise(
            tenant_id=TENANT,
            name="Helio Batteries",
            description="solid state battery cells for electric vehicles",
            email="team@helio.example.com",
            language="en",
        )
        s.add_all([zh, en, latin])
        s.commit()
        need = Need(
            tenant_id=TENANT,
            enterprise_id=zh.id,
            title="寻找视觉检测技术",
            description="产线上的工业机器人需要视觉检测算法识别缺陷",
            kinds=[],
        )
        s.add(need)
        rows = {
            "new": Resource(
                tenant_id=TENANT,
                kind="result",
                title=ROBOT,
                description=ROBOT_TEXT,
                provider="清华大学",
                updated_at=RECENT,
            ),
            "scenario": Resource(
                tenant_id=TENANT,
                kind="scenario",
                title="自动化产线视觉检测改造场景",
                description="汽车厂焊装车间引入工业机器人与视觉检测",
                provider="某汽车厂",
                updated_at=RECENT,
                details={"deadline": (NOW.date() + timedelta(days=30)).isoformat()},
            ),
            "old": Resource(
                tenant_id=TENANT,
                kind="result",
                title=ROBOT + "（旧版）",
                description=ROBOT_TEXT,
                provider="旧大学",
                updated_at=NOW - timedelta(days=60),
            ),
            "rejected": Resource(
                tenant_id=TENANT,
                kind="result",
                title=ROBOT + "（已拒绝）",
                description=ROBOT_TEXT,
                provider="北京大学",
                updated_at=RECENT,
            ),
            "foreign_private": Resource(
                tenant_id=OTHER_TENANT,
                kind="result",
                title=ROBOT + "（他园区私有）",
                description=ROBOT_TEXT,
                provider="他园区",
                visibility="private",
                updated_at=RECENT,
            ),
            "foreign_public": Resource(
                tenant_id=OTHER_TENANT,
                kind="result",
                title=ROBOT + "（他园区公开）",
                description=ROBOT_TEXT,
                provider="他园区大学",
                updated_at=RECENT,
            ),
            "expired": Resource(
                tenant_id=TENANT,
                kind="scenario",
                title="视觉检测场景（已截止）",
                description="工业机器人 视觉检测 自动化产线",
                provider="某电厂",
                updated_at=RECENT,
                details={"deadline": (NOW.date() - timedelta(days=1)).isoformat()},
            ),
            "unrelated": Resource(
                tenant_id=TENANT,
                kind="fund",
                title="餐饮连锁消费基金",
                description="投资餐饮门店与食品零售",
                provider="消费基金",
                updated_at=RECENT,
            ),
            "battery": Resource(
                tenant_id=TENANT,
                kind="result",
                title="Solid state battery cells",
                description="solid state battery cells for electric vehicles",
                provider="MIT",
                language="en",
                updated_at=RECENT,
            ),
        }
        s.add_all(rows.values())
        s.commit()
        s.add(
            Feedback(
                tenant_id=TENANT, enterprise_id=zh.id, resource_id=rows["rejected"].id, action="rejected"
            )
        )
        s.commit()
        ids = {name: r.id for name, r in rows.items()}
        ids.update(zh=zh.id, en=en.id, latin=latin.id, need=need.id)
    me = MatchEngine(engine_settings, engine, default_taxonomy(), load_encoder(engine_settings.encoder))
    me.start(background_save_s=0)
    yield me, ids
    me.close()


def query(
    me, ids, *, enterprise="zh", need=None, exclude=(), since=SINCE, min_score=0.0, k=50, language="zh"
):
    """The query the composer would build for an enterprise's profile (need=None) or one of its needs."""
    with Session(me.db) as s:
        row = s.get(Need, need) if need is not None else s.get(Enterprise, ids[enterprise])
        parts = (row.title, row.description) if need is not None else (row.name, row.description)
    return DemandQuery(
        tenant=TENANT,
        enterprise_id=ids[enterprise],
        need_id=need,
        text="\n".join(p for p in parts if p),
        kinds=(),
        exclude=frozenset(exclude),
        since=since,
        today=NOW.date(),
        min_score=min_score,
        language=language,
        k=k,
    )


def test_suggests_new_fitting_resources_and_none_from_before_since(world):
    me, ids = world
    src = EngineSource(me)
    got = {s.resource_id: s for s in src.suggest(query(me, ids))}
    assert ids["new"] in got and ids["scenario"] in got
    assert ids["old"] not in got  # updated before `since`
    assert ids["expired"] not in got  # deadline passed
    # without the `since` limit the old resource is found: it was left out for its age, not for its text
    assert ids["old"] in {s.resource_id for s in src.suggest(query(me, ids, since=None))}
    s = got[ids["new"]]
    assert (s.kind, s.title, s.provider) == ("result", ROBOT, "清华大学")


def test_excluded_and_other_tenants_private_resources_are_never_suggested(world):
    me, ids = world
    src = EngineSource(me)
    plain = {s.resource_id for s in src.suggest(query(me, ids, need=ids["need"]))}
    assert ids["rejected"] in plain  # it fits: only the exclusion below keeps it out
    assert ids["foreign_public"] in plain  # public records of other tenants are matchable
    assert ids["foreign_private"] not in plain
    excluded = {
        s.resource_id for s in src.suggest(query(me, ids, need=ids["need"], exclude={ids["rejected"]}))
    }
    assert ids["rejected"] not in excluded and ids["new"] in excluded
    assert ids["foreign_private"] not in excluded


def test_scores_respect_min_score_and_are_ordered(world):
    me, ids = world
    src = EngineSource(me)
    everything = src.suggest(query(me, ids, need=ids["need"]))
    scores = [s.score for s in everything]
    assert len(scores) >= 3 and scores == sorted(scores, reverse=True)
    # a cut between two distinct scores (recency makes scores drift by a hair between two calls)
    j = next(j for j in range(len(scores) // 2, len(scores) - 1) if scores[j] - scores[j + 1] > 1e-3)
    cut = (scores[j] + scores[j + 1]) / 2
    kept = src.suggest(query(me, ids, need=ids["need"], min_score=cut))
    assert kept and all(s.score >= cut for s in kept)
    assert [s.resource_id for s in kept] == [s.resource_id for s in everything if s.score >= cut]
    assert [s.score for s in kept] == sorted((s.score for s in kept), reverse=True)
    limited = src.suggest(query(me, ids, need=ids["need"], k=2))
    assert [s.resource_id for s in limited] == [s.resource_id for s in everything[:2]]


def test_explanation_is_in_the_enterprises_language(world):
    me, ids = world
    src = EngineSource(me)
    zh = {s.resource_id: s.summary for s in src.suggest(query(me, ids, language="zh"))}
    en = {s.resource_id: s.summary for s in src.suggest(query(me, ids, enterprise="en", language="en"))}
    assert ids["new"] in zh and ids["new"] in en
    assert "匹配度" in zh[ids["new"]] and "match " not in zh[ids["new"]]
    assert re.search(r"\bmatch \d+%", en[ids["new"]]) and "匹配度" not in en[ids["new"]]
    assert "；" not in en[ids["new"]] and "关键词" not in en[ids["new"]]


def test_dense_weight_follows_the_query_language(world, monkeypatch):
    me, ids = world
    assert me.dense_weight_for("工业机器人") != me.dense_weight_for(
        "solid state battery"
    )  # else this proves nothing
    seen = []
    real = me.pipeline.rank

    def spy(cands, fit, w, ranker, language=None):
        seen.append(w)
        return real(cands, fit, w, ranker, language)

    monkeypatch.setattr(me.pipeline, "rank", spy)
    src = EngineSource(me)
    zh, latin = query(me, ids), query(me, ids, enterprise="latin", language="en")
    src.suggest(zh)
    got = src.suggest(latin)
    assert seen == [me.dense_weight_for(zh.text), me.dense_weight_for(latin.text)]
    assert ids["battery"] in {s.resource_id for s in got}


def test_composed_digest_through_the_engine(world, engine):
    me, ids = world
    composer = DigestComposer(
        EngineSource(me), public_url="https://park.example.com", policy=DigestPolicy(threshold=0.0)
    )
    with Session(engine, expire_on_commit=False) as session:
        zh = session.get(Enterprise, ids["zh"])
        other = session.get(Enterprise, ids["latin"])
        digests = composer.compose_many(session, [zh, other], "2026-W48", now=NOW)
    items = {i.resource_id: i for i in digests[ids["zh"]].items}
    assert ids["new"] in items and ids["scenario"] in items
    # the first digest looks back 28 days: the 60-day-old one stays out; rejected feedback excludes its resource
    for name in ("old", "rejected", "foreign_private", "expired"):
        assert ids[name] not in items, name
    assert items[ids["new"]].url == f"https://park.example.com/v1/resources/{ids['new']}"
    assert all(CJK.search(i.summary) for i in items.values())
    assert ids["battery"] in {i.resource_id for i in digests[ids["latin"]].items}
    assert all("match " in i.summary and "匹配度" not in i.summary for i in digests[ids["latin"]].items)


def test_a_changed_resource_is_explained_from_its_new_text(world, engine):
    me, ids = world
    with Session(engine, expire_on_commit=False) as s:
        welder = Enterprise(tenant_id=TENANT, name="焊", description="激光焊缝跟踪", email="w@example.com")
        s.add(welder)
        s.commit()
    ids["welder"] = welder.id
    src = EngineSource(me)

    def summary_of_new() -> str:
        return {s.resource_id: s.summary for s in src.suggest(query(me, ids, enterprise="welder"))}[
            ids["new"]
        ]

    assert "焊缝" not in summary_of_new()
    with Session(engine, expire_on_commit=False) as s:
        r = s.get(Resource, ids["new"])
        r.description = ROBOT_TEXT + "支持激光焊缝跟踪。"
        r.updated_at = datetime.now(UTC)
        s.add(r)
        s.commit()
    me.resources_changed([r])
    assert "焊缝" in summary_of_new()
