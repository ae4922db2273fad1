"""Writers and matchers at once: every read sees one consistent snapshot of the catalog, never a 5xx."""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter

from fastapi.testclient import TestClient

WRITERS = 3
MATCHERS = 5
SECONDS = 6.0
TEXTS = ("量子传感 导航", "锂电池正极材料", "人工智能 影像诊断", "集成电路 融资", "quantum sensing")


def test_parallel_writes_and_matches_never_answer_5xx(engine_client: TestClient, headers, payloads):
    admin = headers["admin"]
    kinds = ("result", "scenario", "fund", "incubator")
    live: list[int] = []
    for i in range(12):
        r = engine_client.post(
            "/v1/resources", json=payloads.resource(kinds[i % 4], title=f"种子 {i}"), headers=admin
        )
        assert r.status_code == 201, r.text
        live.append(r.json()["id"])
    live_lock = threading.Lock()
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    stop = time.monotonic() + SECONDS
    serial = itertools.count()

    def record(what: str, r) -> None:
        with live_lock:
            statuses[(what, r.status_code)] += 1
            if r.status_code >= 500:
                failures.append(f"{what}: {r.status_code} {r.text[:300]}")

    def guarded(work, seed: int) -> None:
        # the test client re-raises what the app did not handle (an answer that would have been a 500)
        try:
            work(seed)
        except Exception as exc:  # noqa: BLE001 - every kind of failure is what this test reports
            with live_lock:
                failures.append(f"{type(exc).__name__}: {exc}")

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            n = next(serial)
            r = engine_client.post(
                "/v1/resources",
                json=payloads.resource(kinds[n % 4], title=f"量子传感 并发 {n}", industries=["量子信息"]),
                headers=admin,
            )
            record("create", r)
            if r.status_code != 201:
                continue
            rid = r.json()["id"]
            record(
                "update",
                engine_client.patch(
                    f"/v1/resources/{rid}", json={"description": f"锂电池 人工智能 {n}"}, headers=admin
                ),
            )
            with live_lock:
                live.append(rid)
                victim = live.pop(rng.randrange(len(live))) if len(live) > 8 else None
            if victim is not None:
                record("delete", engine_client.delete(f"/v1/resources/{victim}", headers=admin))

    def matcher(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop:
            text = rng.choice(TEXTS)
            body = {"text": text, "k": 20, "min_score": 0, "per_provider": 0}
            record("match", engine_client.post("/v1/match", json=body, headers=admin))
            record("search", engine_client.get("/v1/search", params={"q": text}, headers=admin))
            with live_lock:
                rid = rng.choice(live)
            record("reverse", engine_client.get(f"/v1/resources/{rid}/matches?min_score=0", headers=admin))

    threads = [threading.Thread(target=guarded, args=(writer, i)) for i in range(WRITERS)]
    threads += [threading.Thread(target=guarded, args=(matcher, 100 + i)) for i in range(MATCHERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 60)
    assert not any(t.is_alive() for t in threads)
    assert not failures, f"{len(failures)} 5xx answers, first: {failures[:3]}; counts {dict(statuses)}"
    # the run did exercise both sides
    assert statuses[("create", 201)] >= WRITERS and statuses[("match", 200)] >= MATCHERS
    assert sum(n for (what, code), n in statuses.items() if what == "reverse" and code == 200) >= 1
