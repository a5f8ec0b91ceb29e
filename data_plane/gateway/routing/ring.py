"""A consistent-hash ring with virtual nodes and a stable (process-independent) hash."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator, Sequence


def stable_hash(data: bytes) -> int:
    """64 bits that every gateway process computes alike (unlike `hash()`)."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class HashRing:
    """Points on a 64-bit ring; each member owns `vnodes` of them."""

    __slots__ = ("_owners", "_points", "_ranks", "members")

    RANKS_KEPT = 512
    """Walks remembered per ring (`ranks`); beyond it the memo starts over."""

    def __init__(self, members: Sequence[str], vnodes: int = 64) -> None:
        if not members:
            raise ValueError("a ring needs at least one member")
        self.members = tuple(members)
        points = sorted(
            (stable_hash(f"{name}#{v}".encode()), index)
            for index, name in enumerate(self.members)
            for v in range(vnodes)
        )
        self._points = [p for p, _ in points]
        self._owners = [i for _, i in points]
        self._ranks: dict[int, tuple[int, ...]] = {}

    def walk(self, key_hash: int) -> Iterator[int]:
        """Member indexes in ring order from `key_hash`, each once: owner first."""
        n = len(self._points)
        start = bisect.bisect_left(self._points, key_hash)
        seen: set[int] = set()
        for step in range(n):
            owner = self._owners[(start + step) % n]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == len(self.members):
                    return

    def owner(self, key_hash: int) -> int:
        return next(self.walk(key_hash))

    def ranks(self, key_hash: int) -> tuple[int, ...]:
        """Each member's place in `walk(key_hash)` (0: the owner), by member index.

        Remembered per ring point: keys that land between the same two points share it."""
        start = bisect.bisect_left(self._points, key_hash) % len(self._points)
        ranks = self._ranks.get(start)
        if ranks is None:
            if len(self._ranks) >= self.RANKS_KEPT:
                self._ranks.clear()
            order = [0] * len(self.members)
            for rank, index in enumerate(self.walk(key_hash)):
                order[index] = rank
            ranks = self._ranks[start] = tuple(order)
        return ranks
