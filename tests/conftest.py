"""Test tiers follow the folders: tests/unit, tests/integration, tests/e2e.

Each test is marked with its tier from its path, so `pytest -m unit` (or integration, e2e)
selects a tier without every module repeating the marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_TIERS = ("unit", "integration", "e2e")
_ROOT = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(item.path).relative_to(_ROOT).parts[0]
        if tier not in _TIERS:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live under tests/{{{','.join(_TIERS)}}}/"
            )
        item.add_marker(getattr(pytest.mark, tier))
