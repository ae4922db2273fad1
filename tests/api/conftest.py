"""The API tests' own collection rule: the operations the OpenAPI conformance run still fails on, each with why.

They run and are expected to fail. Not strictly: the run's state moves with every operation before it, so an
example that fails here is not reached on every run (and schemathesis's pytest plugin cannot report a strict
xfail that passes). `-rX` lists any that passed; a fixed one's entry must go."""

from __future__ import annotations

import pytest

# operation label -> what schemathesis (all checks, 200 examples each) still finds there
CONFORMANCE_GAPS: dict[str, str] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        gap = CONFORMANCE_GAPS.get(getattr(item, "operation_label", ""))
        if gap is not None:
            item.add_marker(pytest.mark.xfail(strict=False, reason=gap))
