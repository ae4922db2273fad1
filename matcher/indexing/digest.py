"""Digests that say whether a replica's indexes hold exactly the store's records: per kind (resource, need,
enterprise), how many records and a checksum of their (id, stamp) pairs. The store's digest is read from its
rows, a replica's from the stamps its index pairs hold; equal digests mean the same records at the same
versions. Totals over every tenant only: no record, title or tenant is named.

`matcher feed verify` compares the two (the replica's through `GET /v1/admin/index/digest`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from matcher.domain.tables import Enterprise, Need, Resource, as_utc
from matcher.indexing.demand_keys import DEMAND_ENTERPRISE, DEMAND_NEED, split_demand_key

KINDS = ("resource", "need", "enterprise")


@dataclass(frozen=True)
class KindDigest:
    count: int
    checksum: str

    def as_dict(self) -> dict[str, int | str]:
        return {"count": self.count, "checksum": self.checksum}


def digest_of(pairs: Iterable[tuple[int, float]]) -> KindDigest:
    """Count and sha256 of the sorted (id, stamp) pairs; stamps to the microsecond, as the store keeps them."""
    rows = sorted((int(i), round(float(s), 6)) for i, s in pairs)
    h = hashlib.sha256()
    for i, s in rows:
        h.update(f"{i}:{s:.6f}\n".encode())
    return KindDigest(count=len(rows), checksum=h.hexdigest()[:32])


def _stamp(value: object) -> float:
    ts = as_utc(value)  # type: ignore[arg-type]
    return ts.timestamp() if ts else 0.0


def store_digest(db: Engine) -> dict[str, KindDigest]:
    """The store's records, per kind (reads ids and update times only)."""
    out: dict[str, KindDigest] = {}
    with Session(db) as session:
        for name, model in (("resource", Resource), ("need", Need), ("enterprise", Enterprise)):
            rows = session.execute(select(model.id, model.updated_at))  # type: ignore[call-overload]
            out[name] = digest_of((i, _stamp(at)) for i, at in rows)
    return out


def index_digest(supply: dict[int, float], demand: dict[int, float]) -> dict[str, KindDigest]:
    """What a replica's indexes hold, from the stamps of its supply (resources) and demand (needs and
    enterprises) pairs."""
    needs: list[tuple[int, float]] = []
    enterprises: list[tuple[int, float]] = []
    for key, s in demand.items():
        kind, rid = split_demand_key(int(key))
        (needs if kind == DEMAND_NEED else enterprises if kind == DEMAND_ENTERPRISE else []).append((rid, s))
    return {
        "resource": digest_of(supply.items()),
        "need": digest_of(needs),
        "enterprise": digest_of(enterprises),
    }


def differences(store: dict[str, dict], replica: dict[str, dict]) -> list[str]:
    """One readable line per kind on which the two digests (as dicts) disagree."""
    lines = []
    for kind in KINDS:
        s, r = store.get(kind, {}), replica.get(kind, {})
        if s.get("count") != r.get("count"):
            lines.append(
                f"{kind}: {s.get('count')} records in the store, {r.get('count')} in the replica's index"
            )
        elif s.get("checksum") != r.get("checksum"):
            lines.append(
                f"{kind}: the same count ({s.get('count')}) but other records or versions (checksums differ)"
            )
    return lines
