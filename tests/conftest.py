"""Test tiers follow the folders: tests/unit, tests/integration, tests/e2e, tests/faults.

Each test is marked with its tier from its path, so `pytest -m unit` (or integration, e2e)
selects a tier without every module repeating the marker.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI explores the same examples on every run (a red CI is then always reproducible);
# developers' runs explore new ones, which is where property tests find bugs.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

_TIERS = ("unit", "integration", "e2e", "faults")
_ROOT = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(item.path).relative_to(_ROOT).parts[0]
        if tier not in _TIERS:
            raise pytest.UsageError(
                f"{item.nodeid}: tests live under tests/{{{','.join(_TIERS)}}}/"
            )
        item.add_marker(getattr(pytest.mark, tier))
