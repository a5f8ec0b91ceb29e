"""Fixtures shared by the gateway's integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.fake_vllm import FakeVllm


@pytest.fixture
async def engine() -> AsyncIterator[FakeVllm]:
    """One fake vLLM engine serving model `tiny` on loopback."""
    e = FakeVllm("tiny")
    await e.start()
    yield e
    await e.stop()
