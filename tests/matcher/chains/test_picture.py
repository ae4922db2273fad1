"""The chain map as PNG: the SVG's layout and size, in both languages where a CJK font is installed and in
English where none is (never boxes of missing glyphs)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pytest

from matcher.chains import picture
from matcher.chains.render import layout
from matcher.domain.chain_schemas import ChainPublic

NOW = datetime.now(UTC)


def _link(key: str, zh: str, en: str, stage: str, feeds: list[str], enterprises: int) -> dict:
    counts = {"enterprises": enterprises, "resources": 1, "needs": 0, "prospects": 0}
    return dict(
        id=len(key), key=key, name_zh=zh, name_en=en, description="", stage=stage, depth=0, feeds=feeds,
        industries=[], keywords=[], counts=counts, enterprises=[], resources=[], needs=[], prospects=[], gap=False,
    )  # fmt: skip


CHAIN = ChainPublic(
    id=1,
    name_zh="智能网联汽车",
    name_en="",
    description="",
    shared=False,
    min_score=0.3,
    max_links_per_record=2,
    gap_threshold=1,
    placed_at=None,
    placement_stats={},
    links=[
        _link("chip", "车规芯片", "Automotive chips", "upstream", ["mobility"], 2),
        _link("hdmap", "高精地图", "", "upstream", ["mobility"], 0),
        _link("mobility", "出行服务", "Mobility", "downstream", [], 1),
    ],
    gaps=[
        dict(
            link_id=5,
            key="hdmap",
            name_zh="高精地图",
            name_en="",
            rank=1,
            enterprises=0,
            needs=0,
            resources=1,
            zh="x",
            en="y",
            candidates={},
        )
    ],  # fmt: skip
    created_at=NOW,
    updated_at=NOW,
)


@pytest.mark.parametrize("family", [None, "DejaVu Sans"])
def test_the_png_has_the_svgs_size_with_or_without_a_cjk_font(monkeypatch, family):
    monkeypatch.setattr(picture, "cjk_family", lambda: family)
    data = picture.chain_png(CHAIN)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    lay = layout(CHAIN)
    assert struct.unpack(">II", data[16:24]) == (lay.width, lay.height)


def test_without_a_cjk_font_the_words_are_english():
    words = picture._Words(chinese=False)
    assert words.title(CHAIN) == "chain 1"  # no English name: no Chinese either
    assert words.names(CHAIN.links[0]) == ("Automotive chips", "[chip]")
    assert words.names(CHAIN.links[1]) == ("hdmap", "[hdmap]")
    assert words.column("上游 Upstream") == "Upstream" and words.column("第 2 层 Level 2") == "Level 2"
    assert words.legend(CHAIN).startswith("red: gaps") and not any(
        "\u4e00" <= ch <= "\u9fff" for ch in words.legend(CHAIN)
    )
    chinese = picture._Words(chinese=True)
    assert chinese.names(CHAIN.links[0]) == ("车规芯片", "Automotive chips")
