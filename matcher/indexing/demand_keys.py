"""The demand side's key space: needs and enterprises share one index, the key's low bit says which."""

from __future__ import annotations

DEMAND_NEED, DEMAND_ENTERPRISE = 0, 1


def demand_key(kind: int, record_id: int) -> int:
    """The demand-side index key of a need (`DEMAND_NEED`) or an enterprise (`DEMAND_ENTERPRISE`)."""
    return record_id * 2 + kind


def split_demand_key(key: int) -> tuple[int, int]:
    """(kind, record id) of a demand-side key."""
    return key & 1, key >> 1
