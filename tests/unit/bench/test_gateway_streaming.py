"""The streaming benchmark's reading of the simulator's send stamps (not a benchmark)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

# The benchmark scripts import their shared helpers by name, as `python bench/x.py` runs them.
sys.path.append(str(Path(__file__).resolve().parents[3] / "bench"))
from gateway_streaming import _stamps, _Stream


def test_stamps_are_read_in_order_and_a_cut_one_is_skipped() -> None:
    body = b'data: {"x":1,"hoist_sent_ns":123}\n\ndata: {"hoist_sent_ns":456}\n\n'
    assert _stamps(body) == [123, 456]
    assert _stamps(body + b'data: {"hoist_sent_ns":78') == [123, 456]
    assert _stamps(b'data: {"hoist_sent_ns":}') == []
    assert _stamps(b"data: [DONE]\n\n") == []


def test_added_latency_is_the_gap_seen_minus_the_gap_sent() -> None:
    loop = asyncio.new_event_loop()
    try:
        added: list[float] = []
        stream = _Stream(b"", [], loop.create_future(), added)
        stream.sent, stream.received = 1_000_000_000, 5_000_000_000
        sent = 1_050_000_000  # 50 ms after the previous chunk
        stream.on_body(b'data: {"hoist_sent_ns":%d}\n\n' % sent)
        assert len(added) == 1
        # The client saw a gap of (now - 5 s), the engine produced 50 ms.
        assert stream.sent == sent and stream.received is not None
        seen = (stream.received - 5_000_000_000) / 1e9
        assert abs(added[0] - (seen - 0.05)) < 1e-9
    finally:
        loop.close()
