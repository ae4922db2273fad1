"""Regions across Chinese, English and aliases, and what lies inside what: in the table, the catalog's hard
filter, fit, constraints and the list endpoints."""

from __future__ import annotations

from datetime import date

import pytest

from matcher.domain.regions import default_regions, region_key
from matcher.indexing.catalog import Catalog, Filter, Meta
from matcher.matching.fit import Ask, constraints, fit_features

REGIONS = default_regions()


@pytest.mark.parametrize(
    "names",
    [
        ("Beijing", "北京", "北京市", " beijing "),
        ("Haidian", "海淀", "海淀区", "Haidian District", "haidian-district"),
        ("海淀园", "中关村海淀园", "Haidian Park", "Zhongguancun Haidian Park"),
        ("亦庄", "北京经开区", "Beijing E-Town", "E-Town"),
        ("Shenzhen", "深圳", "深圳市"),
        ("全国", "nationwide", "China"),
    ],
)
def test_spellings_of_one_region_share_one_key(names):
    keys = {region_key(n) for n in names}
    assert len(keys) == 1 and None not in keys


def test_places_lie_inside_their_district_city_and_park():
    assert REGIONS.fits("北京", "海淀园") and REGIONS.fits("Haidian", "海淀园")
    assert REGIONS.fits("Zhongguancun", "昌平园") and REGIONS.fits("海淀", "中关村科学城")
    assert REGIONS.fits("全国", "Haidian") and REGIONS.fits("上海", "全国")
    assert not REGIONS.fits("海淀", "昌平园") and not REGIONS.fits("Beijing", "上海")
    assert REGIONS.fits("海淀", None) is None


def test_unknown_names_keep_the_old_normalisation():
    assert region_key("某某县") == region_key("某某县 ") and region_key("Atlantis City") == "atlantis city"
    assert REGIONS.fits("某某开发区", "某某开发区") and not REGIONS.fits("某某开发区", "北京")


def _meta(i: int, region: str | None) -> Meta:
    return Meta(
        id=i,
        kind="result",
        tenant="t",
        public=True,
        active=True,
        title=f"r{i}",
        industries=frozenset(),
        own_industries=(),
        region=region,
        expires=None,
    )


def test_the_region_filter_takes_any_spelling_and_what_lies_inside():
    cat = Catalog()
    regions = {
        1: "海淀园",
        2: "北京市",
        3: "Haidian",
        4: "上海",
        5: "全国",
        6: "昌平园",
        7: None,
        8: "海淀区",
    }
    cat.upsert(_meta(i, r) for i, r in regions.items())

    def ids(*wanted: str) -> set[int]:
        allowed = cat.allowed(Filter(tenant="t", regions=wanted))
        return set(regions) if allowed is None else set(allowed.tolist())

    # a nationwide record serves every region; a Beijing-wide record is not known to be in Haidian
    assert ids("Beijing") == {1, 2, 3, 5, 6, 8}
    assert ids("海淀") == ids("Haidian District") == {1, 3, 5, 8}
    assert ids("Shanghai") == {4, 5}
    assert ids("Haidian", "Changping") == {1, 3, 5, 6, 8}


def test_fit_and_constraints_compare_regions_across_languages():
    ask = Ask(region="Haidian", today=date(2030, 1, 1))
    assert fit_features(ask, _meta(1, "海淀园"))["region"] == 1.0
    assert fit_features(ask, _meta(1, "昌平园"))["region"] == 0.0
    assert fit_features(ask, _meta(1, None))["region"] is None
    (region,) = [c for c in constraints(ask, _meta(1, "北京市"), caller_tenant="t") if c["name"] == "region"]
    assert region["status"] == "met" and region["offered"] == "北京市"


def test_the_list_endpoints_filter_regions_across_languages(client, headers, payloads):
    url = "/v1/enterprises"
    made = {}
    for region in ("海淀园", "Changping", "上海市"):
        r = client.post(
            url, json=payloads.enterprise(name=f"E {region}", region=region), headers=headers["admin"]
        )
        assert r.status_code == 201, r.text
        made[region] = r.json()["id"]

    def ids(region: str) -> set[int]:
        r = client.get(url, params={"region": region}, headers=headers["admin"])
        assert r.status_code == 200, r.text
        return {x["id"] for x in r.json()["data"]}

    assert ids("Haidian") == ids("海淀区") == {made["海淀园"]}
    assert ids("北京") == {made["海淀园"], made["Changping"]}
    assert ids("Shanghai") == {made["上海市"]}
