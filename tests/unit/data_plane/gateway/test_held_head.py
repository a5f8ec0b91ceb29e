"""HeldHead: an answer's head leaves with the next write, in order, and never stays behind."""

from __future__ import annotations

import asyncio

from data_plane.gateway.http_protocol import HeldHead


class Recorder:
    """A transport that records each write call."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"extra:{name}"


async def test_the_head_and_the_body_leave_in_one_write() -> None:
    transport = Recorder()
    held = HeldHead(transport, asyncio.get_running_loop())
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert transport.writes == []
    held.write(b"{}")
    assert transport.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]


async def test_only_the_first_write_waits_and_order_is_kept() -> None:
    transport = Recorder()
    held = HeldHead(transport, asyncio.get_running_loop())
    for part in (b"head|", b"chunk1|", b"chunk2|", b"end"):
        held.write(part)
    assert transport.writes == [b"head|chunk1|", b"chunk2|", b"end"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing held
    assert b"".join(transport.writes) == b"head|chunk1|chunk2|end"


async def test_a_head_with_nothing_after_it_leaves_at_the_end_of_the_pass() -> None:
    transport = Recorder()
    held = HeldHead(transport, asyncio.get_running_loop())
    held.write(b"head")
    await asyncio.sleep(0)
    assert transport.writes == [b"head"]
    held.write(b"body")  # a later write is not held
    assert transport.writes == [b"head", b"body"]


async def test_close_sends_what_is_held_first() -> None:
    transport = Recorder()
    held = HeldHead(transport, asyncio.get_running_loop())
    held.write(b"head")
    held.close()
    assert transport.writes == [b"head"]
    assert transport.closed
    assert held.is_closing()
    await asyncio.sleep(0)  # the scheduled flush does not write to the closed transport
    assert transport.writes == [b"head"]


async def test_a_connection_closed_under_it_drops_the_held_head() -> None:
    transport = Recorder()
    held = HeldHead(transport, asyncio.get_running_loop())
    held.write(b"head")
    transport.close()  # the client went away
    await asyncio.sleep(0)
    assert transport.writes == []


async def test_everything_else_is_the_transports() -> None:
    held = HeldHead(Recorder(), asyncio.get_running_loop())
    assert held.get_extra_info("peername") == "extra:peername"
