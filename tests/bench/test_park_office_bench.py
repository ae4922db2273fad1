"""bench/park_office_bench.py on small data: it prints one JSON object with the event plans and the chain
placement, the plans proven within the bound and the chain placing every record it may."""

from __future__ import annotations

import json

import pytest

from bench.park_office_bench import chain_links, main


def test_the_chain_has_the_links_asked_for_and_no_dangling_feed():
    for n in (12, 30, 40):
        links = chain_links(n)
        keys = {x["key"] for x in links}
        assert len(links) == n and len(keys) == n
        assert all(f in keys for x in links for f in x["feeds"])
        assert any(x["feeds"] for x in links)


@pytest.mark.slow
def test_the_bench_prints_both_figures(capsys, tmp_path):
    main(
        [
            "--enterprises", "300", "--resources", "300", "--encoder", "hashing", "--event-size", "40",
            "--slots", "3", "--tables", "8", "--links", "12", "--work-dir", str(tmp_path),
        ]
    )  # fmt: skip
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    plan, seated = out["event"]["plan"], out["event"]["plan_seating_everyone"]
    assert plan["meetings"] <= plan["capacity"] == 24
    assert plan["gap"] <= 0.02 and seated["gap"] <= 0.02
    assert seated["participants_met"] >= plan["participants_met"]
    chain = out["chain"]
    assert chain["links"] == 12 and chain["records"]["enterprise"] == 300
    assert chain["seconds"]["place"] > 0
